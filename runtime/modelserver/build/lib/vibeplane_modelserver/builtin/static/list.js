(function () {
  const form = document.getElementById("item-form");
  const tbody = document.querySelector("#items tbody");
  const empty = document.getElementById("empty");
  const count = document.getElementById("count");
  const filter = document.getElementById("filter");
  const submitButton = document.getElementById("submit-button");
  const cancelButton = document.getElementById("cancel-edit");
  const formHeading = document.getElementById("form-heading");
  let editingId = null;

  // vibeplane:include storage.js

  // vibeplane:include fields.js

  let items = load([]).filter((item) => item && typeof item === "object");

  function newId() {
    return Date.now().toString(36) + "-" + Math.random().toString(36).slice(2, 8);
  }

  function fillForm(item) {
    for (const field of APP.fields) {
      const input = form.elements.namedItem(field.key);
      const value = item[field.key];
      if (field.type === "checkbox") {
        input.checked = Boolean(value);
      } else {
        input.value = value === undefined || value === null ? "" : String(value);
      }
    }
  }

  function resetForm() {
    editingId = null;
    form.reset();
    submitButton.textContent = "Add";
    formHeading.textContent = "Add an item";
    cancelButton.hidden = true;
  }

  function startEdit(item) {
    editingId = item.id;
    fillForm(item);
    submitButton.textContent = "Save";
    formHeading.textContent = "Edit the item";
    cancelButton.hidden = false;
    form.scrollIntoView({ behavior: "smooth", block: "start" });
  }

  function removeItem(item) {
    items = items.filter((other) => other.id !== item.id);
    if (editingId === item.id) resetForm();
    save(items);
    render();
  }

  function actionButton(label, onClick) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "link";
    button.textContent = label;
    button.addEventListener("click", onClick);
    return button;
  }

  function matches(item, query) {
    if (!query) return true;
    return APP.fields.some((field) =>
      display(field, item[field.key]).toLowerCase().includes(query)
    );
  }

  function render() {
    const query = filter.value.trim().toLowerCase();
    const visible = items.filter((item) => matches(item, query));
    tbody.replaceChildren();
    for (const item of visible) {
      const row = document.createElement("tr");
      for (const field of APP.fields) {
        const cell = document.createElement("td");
        cell.dataset.label = field.label;
        if (field.type === "checkbox") {
          const box = document.createElement("input");
          box.type = "checkbox";
          box.checked = Boolean(item[field.key]);
          box.setAttribute("aria-label", field.label);
          box.addEventListener("change", () => {
            item[field.key] = box.checked;
            save(items);
            render();
          });
          cell.appendChild(box);
        } else {
          cell.textContent = display(field, item[field.key]);
        }
        row.appendChild(cell);
      }
      const actions = document.createElement("td");
      actions.className = "row-actions";
      actions.append(
        actionButton("Edit", () => startEdit(item)),
        actionButton("Delete", () => removeItem(item))
      );
      row.appendChild(actions);
      tbody.appendChild(row);
    }
    empty.hidden = items.length > 0;
    count.textContent = items.length === 0 ? "" : visible.length + " of " + items.length + " shown";
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const values = readForm(form);
    const existing = items.find((item) => item.id === editingId);
    if (existing) {
      Object.assign(existing, values);
    } else {
      items.push(Object.assign({ id: newId() }, values));
    }
    save(items);
    resetForm();
    render();
  });

  cancelButton.addEventListener("click", resetForm);
  filter.addEventListener("input", render);
  render();
})();
