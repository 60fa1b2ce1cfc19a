  function load(fallback) {
    try {
      const raw = localStorage.getItem(APP.storage_key);
      if (raw === null) return fallback;
      const parsed = JSON.parse(raw);
      return Array.isArray(parsed) ? parsed : fallback;
    } catch (err) {
      return fallback;
    }
  }

  function save(values) {
    try {
      localStorage.setItem(APP.storage_key, JSON.stringify(values));
    } catch (err) {
      // Storage may be full or disabled: the app keeps working for this visit.
    }
  }
