/* Sphinx's search, scored as readers expect: a page whose own title holds every word of the
   query comes first (a chapter before its exercises, and both before the other chapters that
   merely mention it), then sections whose headings hold them. Sphinx calls Scorer.score(result)
   for each result; result[2], the anchor, is empty for a page itself, and result[1] is the
   page's title, or "page > section" for a section. */
var Scorer = {
  score: (result) => {
    const [, title, anchor, , score] = result;
    const words = (new URLSearchParams(location.search).get("q") || "").toLowerCase()
      .split(/\s+/).filter(Boolean);
    const heading = String(title).toLowerCase().split(" > ").pop();
    if (!words.length || !words.every((w) => heading.includes(w))) return score;
    if (anchor) return score + 30;  // a section about it
    return score + (heading.startsWith("exercises") ? 40 : 50);
  },
  objNameMatch: 11, objPartialMatch: 6,
  objPrio: { 0: 15, 1: 5, 2: -5 }, objPrioDefault: 0,
  title: 15, partialTitle: 7, term: 5, partialTerm: 2,
};
