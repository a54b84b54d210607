import { describe, expect, it } from "vitest";
import { toEventHtml } from "../../../bridges/kit/eventHtml.js";
import { escapeHtml } from "../../../gateway/platform/escapeHtml.js";

describe("event HTML", () => {
  it("event HTML - the event subset passes unchanged", () => {
    const html =
      "<p><b>b</b> <strong>s</strong> <i>i</i> <em>e</em> <u>u</u> <s>x</s> <del>d</del> <code>c</code></p>" +
      "<pre>pre</pre><blockquote>q</blockquote><ul><li>one</li></ul><ol><li>two</li></ol>" +
      '<a href="https://example.org/a?b=1&amp;c=2">web</a> <a href="mailto:lage@example.org">mail</a>';
    expect(toEventHtml(html)).toBe(html);
  });

  it("event HTML - tags outside the subset go and keep their text; attributes other than href go", () => {
    expect(
      toEventHtml('<span data-mx-color="#f00">rot</span> <font color="red">x</font> <b class="k">b</b>'),
    ).toBe("rot x <b>b</b>");
    expect(toEventHtml("<h1>Lage</h1><strike>alt</strike>")).toBe("<p>Lage</p><s>alt</s>");
  });

  it("event HTML - scripts, handlers and script URLs are stripped", () => {
    const attacks = [
      "<script>alert(1)</script>",
      '<img src="x" onerror="alert(1)">',
      '<a href="javascript:alert(1)">a</a>',
      '<a href="JaVaScRiPt&colon;alert(1)">b</a>',
      '<a href="data:text/html;base64,PHNjcmlwdD4=">c</a>',
      '<a href="//evil.example/">d</a>',
      '<b onclick="alert(1)">e</b>',
      "<style>body{display:none}</style>",
      '<iframe src="https://evil.example/"></iframe>',
      '<svg onload="alert(1)"></svg>',
    ].join("");
    const clean = toEventHtml(attacks);
    expect(clean).toBe("<a>a</a><a>b</a><a>c</a><a>d</a><b>e</b>");
    expect(clean).not.toMatch(/script|onerror|onclick|onload|alert|iframe|href/i);
  });

  it("event HTML - the reply quote <mx-reply> goes with all it holds", () => {
    const html =
      '<mx-reply><blockquote><a href="https://matrix.to/#/!r:hs/$e">In reply to</a> ' +
      '<a href="https://matrix.to/#/@weber:hs">@weber:hs</a><br><b>Lage?</b></blockquote></mx-reply>Ruhig';
    expect(toEventHtml(html)).toBe("Ruhig");
  });

  it("event HTML - text stays escaped", () => {
    expect(toEventHtml("a &lt;b&gt; &amp; c")).toBe("a &lt;b&gt; &amp; c");
    expect(escapeHtml(`<b title="x">Tom's & co</b>`)).toBe(
      "&lt;b title=&quot;x&quot;&gt;Tom&#39;s &amp; co&lt;/b&gt;",
    );
  });
});
