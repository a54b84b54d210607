import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { scratchDir } from "../../helpers/scratchDir.js";
import { helmTemplate } from "./helmTemplate.js";

/** Renders one template in a throwaway chart, with `values` as its values.yaml. */
async function render(template: string, values = "", helpers = ""): Promise<string> {
  const dir = await scratchDir("helm");
  await mkdir(join(dir, "templates"));
  await writeFile(join(dir, "Chart.yaml"), "apiVersion: v2\nname: demo\nversion: 1.2.3\nappVersion: 4.5.6\n");
  await writeFile(join(dir, "values.yaml"), values);
  await writeFile(join(dir, "templates/_helpers.tpl"), helpers);
  await writeFile(join(dir, "templates/t.txt"), template);
  const rendered = await helmTemplate(dir, { release: "rel" });
  return rendered.files.get("demo/templates/t.txt") ?? "";
}

// The Go text/template and Sprig behaviour the chart relies on, as Helm 3 renders it.
describe("chart - the helm template stand-in", () => {
  it("chart - trim markers, comments and built-in objects", async () => {
    expect(
      await render('a:\n  {{- /* gone */}}\n  {{ .Chart.Name }}-{{ .Chart.AppVersion }} {{- " x" }}\n'),
    ).toBe("a:\n  demo-4.5.6 x\n");
    expect(await render("{{ .Release.Name }} {{ .Template.Name }} {{ .Template.BasePath }}")).toBe(
      "rel demo/templates/t.txt demo/templates",
    );
  });

  it("chart - missing keys render empty, a field of a missing value fails", async () => {
    expect(await render("[{{ .Values.nope }}]")).toBe("[]");
    await expect(render("{{ .Values.nope.deeper }}")).rejects.toThrow(
      /nil pointer evaluating interface \{\}\.deeper/,
    );
    // and/or stop at their first deciding argument.
    expect(await render('{{ and false .Values.nope.deeper }}|{{ or 0 "" "x" }}')).toBe("false|x");
  });

  it("chart - numbers print as Go prints them", async () => {
    expect(
      await render(
        '{{ .Values.n }} {{ .Values.n | int }} {{ .Values.small }} {{ printf "%d-%s" 7 "x" }}',
        "n: 1000000\nsmall: 8480\n",
      ),
    ).toBe("1e+06 1000000 8480 7-x");
    await expect(render("{{ eq .Values.small 8480 }}", "small: 8480\n")).rejects.toThrow(
      /incompatible types/,
    );
  });

  it("chart - control structures, variables and includes", async () => {
    const template = [
      '{{- $x := "outer" }}',
      '{{- range $i, $v := list "a" "b" }}{{ $i }}={{ $v }};{{ $x = $v }}{{ end }}',
      "{{- range $k, $v := .Values.m }} {{ $k }}:{{ $v }}{{ end }}",
      " {{ $x }}",
      "{{- with .Values.nope }} never{{ else }} else{{ end }}",
      "{{- if eq 1 2 }} one{{ else if eq 2 2 }} two{{ else }} three{{ end }}",
      '{{- include "demo.block" (dict "k" "v") | nindent 2 }}',
      "",
    ].join("\n");
    const helpers =
      '{{- define "demo.block" -}}\nkey: {{ .k | quote }}\nmap:\n  {{- toYaml (dict "b" 1 "a" (list 2)) | nindent 2 }}\n{{- end }}';
    expect(await render(template, "m: {z: 1, a: 2}\n", helpers)).toBe(
      '0=a;1=b; a:2 z:1\n b else two\n  key: "v"\n  map:\n    a:\n    - 2\n    b: 1\n',
    );
  });

  it("chart - unknown functions and fail stop the render", async () => {
    await expect(render("{{ nosuch 1 }}")).rejects.toThrow(/function "nosuch" not defined/);
    await expect(render('{{ fail "stop here" }}')).rejects.toThrow(/stop here/);
    // Names that Object.prototype has are functions or unknown, never literals.
    expect(await render("{{ toString 8 }}|{{ toString .Values.nope }}")).toBe("8|");
    await expect(render("{{ constructor }}")).rejects.toThrow(/function "constructor" not defined/);
  });
});
