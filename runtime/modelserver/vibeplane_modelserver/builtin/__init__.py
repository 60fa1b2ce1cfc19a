"""The builtin generator: a deterministic, offline "model" for air-gapped installs and tests.

It understands a small set of requests and writes real, working static web apps (index.html,
style.css and app.js in vanilla JavaScript; no CDN, no network; data in localStorage):

- a list app with typed fields ("a todo list with title and due date", "an expense tracker
  with amount, category and date");
- a landing page ("a landing page for a coffee shop called Bean There");
- a form that keeps its responses ("a contact form with name, email and message");
- a dashboard with a bar, line or pie chart drawn in inline SVG ("a sales dashboard with a
  bar chart").

Follow-up prompts change the app: "add a priority field", "rename due date to deadline",
"remove the done field", "make the year field a number", "change the title to Groceries",
"use a dark theme", "make it green", "make it a line chart", "add a testimonials section",
"change the tagline to ...". Anything else, and anything beyond static web apps ("a
distributed database in Rust"), gets a plain answer without files.

The answer is text in the output format of `vibeplane.generation.format`, parsed by the
operator exactly like a real model's. The app's state (`AppSpec`) is written as JSON into
app.js between marker lines, so with the previous revision's files the generator reads the
state back and applies only the newest prompt, answering with search/replace edits; without
them (or when the files are not its own) it replays all prompts and writes whole files. The
answer is a pure function of the prompts and the previous files: same input, byte-identical
output.

Modules: `spec` (the app's state), `words` and `fields` (reading prompts), `create` and
`follow_up` (what a prompt does), `prompts` (applying them in order), `render` and `assets`
(the files; their fixed JavaScript and CSS are the package data in `static/`), `edits`
(search/replace answers), `generator` (the entry points below).
"""

from vibeplane_modelserver.builtin.generator import generate, generate_from_messages
from vibeplane_modelserver.builtin.render import read_spec, render_app
from vibeplane_modelserver.builtin.spec import AppSpec, BuiltinResult

__all__ = [
    "AppSpec",
    "BuiltinResult",
    "generate",
    "generate_from_messages",
    "read_spec",
    "render_app",
]
