  function readForm(form) {
    const values = {};
    for (const field of APP.fields) {
      const input = form.elements.namedItem(field.key);
      if (field.type === "checkbox") {
        values[field.key] = input.checked;
      } else if (field.type === "number") {
        values[field.key] = input.value === "" ? null : Number(input.value);
      } else {
        values[field.key] = input.value.trim();
      }
    }
    return values;
  }

  function display(field, value) {
    if (value === undefined || value === null || value === "") return "";
    if (field.type === "checkbox") return value ? "Yes" : "No";
    if (field.type === "select") {
      const text = String(value);
      return text.charAt(0).toUpperCase() + text.slice(1);
    }
    if (field.type === "date") {
      const date = new Date(String(value) + "T00:00:00");
      return Number.isNaN(date.getTime()) ? String(value) : date.toLocaleDateString();
    }
    if (field.type === "number") {
      const number = Number(value);
      return Number.isFinite(number) ? number.toLocaleString() : String(value);
    }
    return String(value);
  }
