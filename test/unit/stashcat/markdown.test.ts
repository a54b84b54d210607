import { describe, expect, it } from "vitest";
import { markdownToEventHtml } from "../../../bridges/stashcat/markdown.js";

describe("Stashcat markdown", () => {
  it("Stashcat markdown - emphasis, lists and links become the event's HTML subset", () => {
    expect(markdownToEventHtml("**Lage** _ruhig_\n- eins\n- zwei")).toBe(
      "<p><strong>Lage</strong> <em>ruhig</em></p>\n<ul>\n<li>eins</li>\n<li>zwei</li>\n</ul>",
    );
    expect(markdownToEventHtml("siehe https://polizei.example/lage")).toBe(
      '<p>siehe <a href="https://polizei.example/lage">https://polizei.example/lage</a></p>',
    );
  });

  it("Stashcat markdown - raw HTML and script links in markdown never become markup", () => {
    const html = markdownToEventHtml(
      '<script>alert(1)</script> [x](javascript:alert(1)) <img src=x onerror="y">',
    );
    // What is left is text: escaped tags, and no link to a script.
    expect(html).not.toMatch(/<script|<img|href=/i);
    expect(html).toContain("&lt;script&gt;");
  });
});
