(function () {
  const SVG_NS = "http://www.w3.org/2000/svg";
  const WIDTH = 640;
  const HEIGHT = 320;
  const PAD = { top: 20, right: 20, bottom: 40, left: 64 };
  const chart = document.getElementById("chart");
  const form = document.getElementById("point-form");
  const tbody = document.querySelector("#points tbody");
  const reset = document.getElementById("reset");
  const formatter = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });

  // vibeplane:include storage.js

  function sample() {
    return APP.points.map((point) => ({ label: point.label, value: point.value }));
  }

  let points = load(sample()).filter(
    (point) => point && typeof point.label === "string" && Number.isFinite(point.value)
  );

  function svg(name, attrs, text) {
    const node = document.createElementNS(SVG_NS, name);
    for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function notice(text) {
    const attrs = { x: WIDTH / 2, y: HEIGHT / 2, "text-anchor": "middle", class: "axis" };
    chart.appendChild(svg("text", attrs, text));
  }

  function drawAxes(min, span, scaleY) {
    for (let i = 0; i <= 4; i += 1) {
      const value = min + (span * i) / 4;
      const y = scaleY(value);
      const right = WIDTH - PAD.right;
      chart.appendChild(svg("line", { x1: PAD.left, x2: right, y1: y, y2: y, class: "grid" }));
      const attrs = { x: PAD.left - 8, y: y + 4, "text-anchor": "end", class: "axis" };
      chart.appendChild(svg("text", attrs, formatter.format(value)));
    }
  }

  function drawCartesian() {
    const values = points.map((point) => point.value);
    const max = Math.max(0, ...values);
    const min = Math.min(0, ...values);
    const span = max - min || 1;
    const plotWidth = WIDTH - PAD.left - PAD.right;
    const plotHeight = HEIGHT - PAD.top - PAD.bottom;
    const scaleY = (value) => PAD.top + plotHeight - ((value - min) / span) * plotHeight;
    const step = plotWidth / points.length;
    drawAxes(min, span, scaleY);
    const coords = [];
    points.forEach((point, index) => {
      const center = PAD.left + step * index + step / 2;
      const y = scaleY(point.value);
      coords.push(center + "," + y);
      const label = point.label + ": " + formatter.format(point.value);
      if (APP.chart === "bar") {
        const top = Math.min(y, scaleY(0));
        const height = Math.max(1, Math.abs(scaleY(0) - y));
        const bar = svg("rect", {
          x: center - step * 0.35,
          y: top,
          width: step * 0.7,
          height: height,
          rx: 3,
          class: "bar",
        });
        bar.appendChild(svg("title", {}, label));
        chart.appendChild(bar);
      }
      const labelY = HEIGHT - PAD.bottom + 20;
      const attrs = { x: center, y: labelY, "text-anchor": "middle", class: "axis" };
      chart.appendChild(svg("text", attrs, point.label));
    });
    if (APP.chart === "line") {
      chart.appendChild(svg("polyline", { points: coords.join(" "), class: "line" }));
      points.forEach((point, index) => {
        const [x, y] = coords[index].split(",");
        const dot = svg("circle", { cx: x, cy: y, r: 4, class: "dot" });
        dot.appendChild(svg("title", {}, point.label + ": " + formatter.format(point.value)));
        chart.appendChild(dot);
      });
    }
  }

  function drawPie() {
    const positive = points.filter((point) => point.value > 0);
    const total = positive.reduce((sum, point) => sum + point.value, 0);
    if (total <= 0) {
      notice("No positive values to show");
      return;
    }
    const cx = 170;
    const cy = HEIGHT / 2;
    const r = 130;
    let angle = -Math.PI / 2;
    positive.forEach((point, index) => {
      const share = point.value / total;
      const next = angle + share * 2 * Math.PI;
      const cls = "slice slice-" + (index % 6);
      let shape;
      if (share >= 0.9999) {
        shape = svg("circle", { cx: cx, cy: cy, r: r, class: cls });
      } else {
        const x1 = cx + r * Math.cos(angle);
        const y1 = cy + r * Math.sin(angle);
        const x2 = cx + r * Math.cos(next);
        const y2 = cy + r * Math.sin(next);
        const large = share > 0.5 ? 1 : 0;
        const d = ["M", cx, cy, "L", x1, y1, "A", r, r, 0, large, 1, x2, y2, "Z"].join(" ");
        shape = svg("path", { d: d, class: cls });
      }
      shape.appendChild(svg("title", {}, point.label + ": " + formatter.format(point.value)));
      chart.appendChild(shape);
      const legendY = 40 + index * 24;
      const swatch = { x: 340, y: legendY - 12, width: 14, height: 14, class: cls };
      chart.appendChild(svg("rect", swatch));
      const percent = Math.round(share * 1000) / 10;
      const legend = point.label + " (" + percent + "%)";
      chart.appendChild(svg("text", { x: 362, y: legendY, class: "legend" }, legend));
      angle = next;
    });
  }

  function drawChart() {
    chart.replaceChildren();
    if (points.length === 0) {
      notice("No data yet");
      return;
    }
    if (APP.chart === "pie") {
      drawPie();
    } else {
      drawCartesian();
    }
  }

  function renderKpis() {
    const values = points.map((point) => point.value);
    const total = values.reduce((sum, value) => sum + value, 0);
    const best = points.reduce(
      (top, point) => (top === null || point.value > top.value ? point : top),
      null
    );
    const show = (id, text) => {
      document.getElementById(id).textContent = values.length ? text : "-";
    };
    show("kpi-total", formatter.format(total));
    show("kpi-average", formatter.format(total / Math.max(values.length, 1)));
    show("kpi-best", best ? best.label : "-");
  }

  function renderTable() {
    tbody.replaceChildren();
    points.forEach((point, index) => {
      const row = document.createElement("tr");
      const label = document.createElement("td");
      label.textContent = point.label;
      const value = document.createElement("td");
      value.textContent = formatter.format(point.value);
      const actions = document.createElement("td");
      actions.className = "row-actions";
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "link";
      remove.textContent = "Delete";
      remove.addEventListener("click", () => {
        points.splice(index, 1);
        save(points);
        render();
      });
      actions.appendChild(remove);
      row.append(label, value, actions);
      tbody.appendChild(row);
    });
  }

  function render() {
    drawChart();
    renderKpis();
    renderTable();
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const label = form.elements.namedItem("label").value.trim();
    const value = Number(form.elements.namedItem("value").value);
    if (!label || !Number.isFinite(value)) return;
    points.push({ label: label, value: value });
    save(points);
    form.reset();
    render();
  });

  reset.addEventListener("click", () => {
    points = sample();
    save(points);
    render();
  });

  render();
})();
