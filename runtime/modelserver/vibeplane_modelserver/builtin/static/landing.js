(function () {
  const form = document.getElementById("signup-form");
  const status = document.getElementById("signup-status");
  const year = document.getElementById("year");

  // vibeplane:include storage.js

  if (year) year.textContent = String(new Date().getFullYear());

  if (form) {
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const email = form.elements.namedItem("email").value.trim().toLowerCase();
      const emails = load([]);
      if (!emails.includes(email)) emails.push(email);
      save(emails);
      form.reset();
      status.textContent = "Thanks! We will keep " + email + " posted.";
    });
  }
})();
