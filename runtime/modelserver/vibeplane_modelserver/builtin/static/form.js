(function () {
  const form = document.getElementById("entry-form");
  const status = document.getElementById("status");
  const list = document.getElementById("responses");
  const empty = document.getElementById("empty");
  const clear = document.getElementById("clear");

  // vibeplane:include storage.js

  // vibeplane:include fields.js

  let responses = load([]).filter((entry) => entry && typeof entry === "object");

  function summary(entry) {
    return APP.fields
      .map((field) => {
        const text = display(field, entry.values ? entry.values[field.key] : undefined);
        return text ? field.label + ": " + text : "";
      })
      .filter((part) => part !== "")
      .join(" | ");
  }

  function render() {
    list.replaceChildren();
    for (const entry of responses.slice().reverse()) {
      const item = document.createElement("li");
      const time = document.createElement("time");
      time.dateTime = entry.at;
      time.textContent = new Date(entry.at).toLocaleString();
      const text = document.createElement("p");
      text.textContent = summary(entry);
      item.append(time, text);
      list.appendChild(item);
    }
    empty.hidden = responses.length > 0;
    clear.hidden = responses.length === 0;
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    responses.push({ at: new Date().toISOString(), values: readForm(form) });
    save(responses);
    form.reset();
    status.textContent = APP.thanks;
    render();
  });

  clear.addEventListener("click", () => {
    responses = [];
    save(responses);
    status.textContent = "";
    render();
  });

  render();
})();
