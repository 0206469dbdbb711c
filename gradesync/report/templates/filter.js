/* Filter the findings by category, course and status (new / still open / resolved). Inline, no network:
   the report works offline. Without JavaScript every finding is shown and the filter form stays hidden.
   Print shows what is on screen: the filtered set (or everything when no filter is chosen). */
(function () {
  var form = document.getElementById("filters");
  if (!form) { return; }
  var rows = Array.prototype.slice.call(document.querySelectorAll("tr.finding"));
  var groups = Array.prototype.slice.call(document.querySelectorAll(".group"));
  function apply() {
    var cat = form.elements.category.value, course = form.elements.course.value,
        status = form.elements.status.value, shown = 0;
    rows.forEach(function (r) {
      var ok = (!cat || r.getAttribute("data-category") === cat) &&
               (!course || r.getAttribute("data-course") === course) &&
               (!status || r.getAttribute("data-status") === status);
      r.hidden = !ok;
      if (ok) { shown += 1; }
    });
    groups.forEach(function (g) { g.hidden = !g.querySelector("tr.finding:not([hidden])"); });
    var filtered = Boolean(cat || course || status);
    var parts = [];
    [["category", cat], ["course", course], ["status", status]].forEach(function (p) {
      var sel = form.elements[p[0]];
      if (p[1]) { parts.push(p[0] + " " + sel.options[sel.selectedIndex].text); }
    });
    form.elements.shown.value = filtered
      ? "filter: " + parts.join(", ") + " (" + shown + " of " + rows.length + " findings shown)"
      : "all " + rows.length + " findings shown";
    document.body.classList.toggle("filtered", filtered);
  }
  form.hidden = false;
  form.addEventListener("change", apply);
  form.addEventListener("reset", function () { setTimeout(apply, 0); });
  apply();
}());
