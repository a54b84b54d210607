import { readdirSync } from "node:fs";
import { join } from "node:path";
import js from "@eslint/js";
import { createTypeScriptImportResolver } from "eslint-import-resolver-typescript";
import importX from "eslint-plugin-import-x";
import tseslint from "typescript-eslint";

/** Each network's adapter is a folder of bridges/ beside the kit every adapter shares. */
const networks = readdirSync(join(import.meta.dirname, "bridges"), { withFileTypes: true })
  .filter((entry) => entry.isDirectory() && entry.name !== "kit")
  .map((entry) => entry.name);

/**
 * Who may import whom (docs/adding-a-network.md): the contract imports nothing of ours; the platform imports the
 * contract; the core and the adapters import the platform and the contract but never each other; only the CLI
 * imports the bridge registry; nothing that ships imports the test harness.
 */
const shipped = ["./schemas", "./gateway", "./bridges"];
const zones = [
  {
    target: "./schemas",
    from: ["./gateway", "./bridges", "./test"],
    message: "The contract imports nothing of ours.",
  },
  {
    target: "./gateway/platform",
    from: ["./gateway/core", "./gateway/cli", "./bridges"],
    message: "The platform imports only the contract.",
  },
  {
    target: "./gateway/core",
    from: ["./gateway/cli", "./bridges"],
    message: "The core knows no protocol: it imports the platform and the contract only.",
  },
  {
    target: "./bridges",
    from: ["./gateway/core", "./gateway/cli"],
    message: "Adapters import the kit, the platform and the contract; never the core.",
  },
  {
    target: ["./bridges/kit", ...networks.map((n) => `./bridges/${n}`)],
    from: "./bridges/index.ts",
    message: "Only the CLI imports the bridge registry.",
  },
  {
    target: "./bridges/kit",
    from: networks.map((n) => `./bridges/${n}`),
    message: "The kit serves every adapter and knows none.",
  },
  ...networks.map((network) => ({
    target: `./bridges/${network}`,
    from: networks.filter((n) => n !== network).map((n) => `./bridges/${n}`),
    message: "An adapter knows its own protocol and nothing of the other bridges.",
  })),
  ...shipped.map((target) => ({
    target,
    from: "./test",
    message: "Nothing that ships imports the test harness.",
  })),
];

export default tseslint.config(
  { ignores: ["dist/", "node_modules/", "charts/", "coverage/"] },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { "import-x": importX },
    settings: {
      "import-x/resolver-next": [createTypeScriptImportResolver({ project: "./tsconfig.json" })],
    },
    rules: {
      "@typescript-eslint/restrict-template-expressions": [
        "error",
        { allowNumber: true, allowBoolean: true },
      ],
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/no-confusing-void-expression": "off",
      "@typescript-eslint/no-extraneous-class": "off",
      "import-x/no-restricted-paths": ["error", { basePath: import.meta.dirname, zones }],
    },
  },
  {
    files: ["eslint.config.js"],
    extends: [tseslint.configs.disableTypeChecked],
  },
);
