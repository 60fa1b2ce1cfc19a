"""The canned copy of the builtin generator's landing pages: a profile per kind of business,
and the sections a follow-up prompt can add."""

from __future__ import annotations

from typing import Final, TypeAlias

# Landing pages: a profile per kind of business, picked by a keyword pattern: (tagline, heading
# of the offer section, call to action, tiles of the offer section).
Profile: TypeAlias = tuple[str, str, str, tuple[tuple[str, str], ...]]
PROFILES: Final[list[tuple[str, Profile]]] = [
    (
        r"coffee|caf[eé]|espresso|roaster",
        (
            "Freshly roasted coffee, brewed with care.",
            "Menu",
            "Visit us",
            (
                ("Espresso", "Rich, balanced and pulled to order."),
                ("Flat white", "Velvety milk over a double ristretto."),
                ("Pastries", "Baked every morning, best with a cup."),
            ),
        ),
    ),
    (
        r"bak(?:ery|er)|bread|cake|patisserie",
        (
            "Baked fresh every morning.",
            "From the oven",
            "Order ahead",
            (
                ("Sourdough", "Slow-fermented loaves with a crackling crust."),
                ("Croissants", "Buttery layers, baked at dawn."),
                ("Celebration cakes", "Made to order for your big day."),
            ),
        ),
    ),
    (
        r"restaurant|bistro|diner|pizz|sushi|kitchen|food truck|bar\b|pub\b",
        (
            "Seasonal food, made to share.",
            "Menu",
            "Book a table",
            (
                ("Starters", "Small plates to open the evening."),
                ("Mains", "Seasonal dishes cooked over fire."),
                ("Desserts", "Something sweet to finish."),
            ),
        ),
    ),
    (
        r"gym|fitness|crossfit|trainer|boxing",
        (
            "Get stronger, one session at a time.",
            "Programs",
            "Book a free session",
            (
                ("Strength", "Progressive training for every level."),
                ("Conditioning", "Build stamina that lasts."),
                ("Coaching", "One-to-one plans that fit your week."),
            ),
        ),
    ),
    (
        r"yoga|pilates|meditation",
        (
            "Breathe, move, and find your balance.",
            "Classes",
            "Try a class",
            (
                ("Vinyasa flow", "A dynamic practice linking breath and movement."),
                ("Yin", "Slow, deep stretches to unwind."),
                ("Beginners", "A gentle start, no experience needed."),
            ),
        ),
    ),
    (
        r"book|librar",
        (
            "Stories for every reader.",
            "On our shelves",
            "Drop by",
            (
                ("New releases", "The latest titles, fresh off the press."),
                ("Staff picks", "Hand-chosen favourites from our team."),
                ("Events", "Readings, signings and book clubs."),
            ),
        ),
    ),
    (
        r"salon|barber|hair|spa\b|beauty|nail",
        (
            "Look good, feel better.",
            "Services",
            "Book an appointment",
            (
                ("Cuts", "Precision cuts for every style."),
                ("Colour", "From subtle to bold."),
                ("Treatments", "Time to relax and recharge."),
            ),
        ),
    ),
    (
        r"agency|studio|design|consult|freelanc|portfolio|photograph",
        (
            "We design and build things people love.",
            "Services",
            "Start a project",
            (
                ("Strategy", "Clear goals before the first sketch."),
                ("Design", "Interfaces that feel effortless."),
                ("Development", "Fast, accessible and built to last."),
            ),
        ),
    ),
    (
        r"app\b|saas|startup|software|product|platform|tool",
        (
            "The simplest way to get things done.",
            "Features",
            "Get started",
            (
                ("Fast", "Everything responds instantly."),
                ("Private", "Your data stays yours."),
                ("Works everywhere", "On your phone, tablet and desktop."),
            ),
        ),
    ),
    (
        r"dentist|dental|clinic|doctor|vet\b|veterinar|health|physio",
        (
            "Caring for you and your family.",
            "Services",
            "Make an appointment",
            (
                ("Check-ups", "Regular care that prevents problems."),
                ("Treatments", "Modern care from an experienced team."),
                ("Emergencies", "Same-day help when you need it."),
            ),
        ),
    ),
    (
        r"hotel|inn\b|b&b|bed and breakfast|hostel|resort|guesthouse",
        (
            "A warm welcome and a good night's sleep.",
            "Rooms",
            "Check availability",
            (
                ("Single", "Cosy and quiet, perfect for one."),
                ("Double", "Space for two, with a view."),
                ("Suite", "Room to spread out and relax."),
            ),
        ),
    ),
]
DEFAULT_PROFILE: Final[Profile] = (
    "",
    "What we offer",
    "Get in touch",
    (
        ("Quality", "Done properly, every time."),
        ("Service", "Friendly people who care."),
        ("Community", "Proudly local."),
    ),
)
# Sections a follow-up can add, by a keyword of their name: (heading, text, tiles).
SECTION_TEMPLATES: Final[dict[str, tuple[str, str, tuple[tuple[str, str], ...]]]] = {
    "testimonial": (
        "Testimonials",
        "What people say about us.",
        (
            ("“Exactly what I was looking for.”", "A happy customer"),
            ("“Friendly, fast and reliable.”", "A regular"),
        ),
    ),
    "review": (
        "Reviews",
        "What people say about us.",
        (
            ("★★★★★", "“Wonderful from start to finish.”"),
            ("★★★★★", "“I keep coming back.”"),
        ),
    ),
    "pricing": (
        "Pricing",
        "Simple prices, no surprises.",
        (
            ("Basic", "Everything you need to start."),
            ("Plus", "More for those who want more."),
        ),
    ),
    "faq": (
        "FAQ",
        "Answers to common questions.",
        (
            ("Do I need to book?", "Walk-ins are welcome; booking guarantees a spot."),
            ("How can I reach you?", "Use the form at the bottom of this page."),
        ),
    ),
    "team": ("Our team", "The people behind the work.", ()),
    "hour": ("Opening hours", "Monday to Friday 8:00-18:00, weekends 9:00-16:00.", ()),
    "location": ("Find us", "We are in the heart of town, easy to reach by bus and bike.", ()),
    "gallery": ("Gallery", "A look around.", ()),
}
