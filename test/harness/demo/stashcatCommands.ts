/**
 * `npm run demo -- stashcat send` and `… stashcat read`: write and read a Stashcat chat as a person would, with
 * their keys, for trying the demo without a Stashcat app (which only talks to Stashcat's own servers).
 */
import { randomUUID } from "node:crypto";
import type { Command } from "commander";
import { createLogger } from "../../../gateway/platform/log.js";
import {
  decryptText,
  encryptText,
  unlockPrivateKey,
  unwrapChatKey,
} from "../../../bridges/stashcat/crypto.js";
import { StashcatClient, type ChatRef } from "../../../bridges/stashcat/StashcatClient.js";

interface LoginOptions {
  api: string;
  email: string;
  password: string;
  encryptionPassword?: string;
  channel?: string;
  conversation?: string;
}

function chatOf(options: LoginOptions): ChatRef {
  const id = Number(options.channel ?? options.conversation);
  if (!Number.isSafeInteger(id) || id <= 0)
    throw new Error("name the chat: --channel ID or --conversation ID");
  return { type: options.channel === undefined ? "conversation" : "channel", id };
}

/** Logs in and opens the chat's key with the person's encryption password. */
async function open(options: LoginOptions): Promise<{ client: StashcatClient; chat: ChatRef; key: Buffer }> {
  const client = await StashcatClient.connect({
    apiUrl: options.api,
    email: options.email,
    password: options.password,
    deviceId: `cli${randomUUID().replace(/-/g, "")}`,
    appName: "fedgate-cli",
    log: createLogger("warn", "fedgate-stashcat"),
  });
  const privateKey = unlockPrivateKey(
    await client.lockedPrivateKey(),
    options.encryptionPassword ?? options.password,
  );
  const chat = chatOf(options);
  return { client, chat, key: unwrapChatKey((await client.chatKeyField(chat)) ?? "", privateKey) };
}

function withLogin(command: Command): Command {
  return command
    .requiredOption("--api <url>", "the Stashcat API, e.g. http://127.0.0.1:PORT/")
    .requiredOption("--email <email>", "login")
    .requiredOption("--password <password>", "login password")
    .option("--encryption-password <password>", "opens the private key (default: the login password)")
    .option("--channel <id>", "a channel")
    .option("--conversation <id>", "a conversation");
}

export function registerStashcatCommands(program: Command): void {
  const stashcat = program
    .command("stashcat")
    .description("write and read a Stashcat chat as a person would");
  withLogin(stashcat.command("send").description("send an encrypted message"))
    .requiredOption("--text <text>", "message text")
    .action(async (options: LoginOptions & { text: string }) => {
      const { client, chat, key } = await open(options);
      const sealed = encryptText(options.text, key);
      const sent = await client.send(chat, { text: sealed.text, iv: sealed.iv, encrypted: true });
      process.stdout.write(`sent message ${String(sent.id)} to ${chat.type} ${String(chat.id)}\n`);
    });
  withLogin(stashcat.command("read").description("print the chat's latest messages, decrypted"))
    .option("--limit <n>", "how many", "20")
    .action(async (options: LoginOptions & { limit: string }) => {
      const { client, chat, key } = await open(options);
      for (const message of await client.messages(chat, { limit: Number(options.limit) })) {
        const text = message.deleted
          ? "(deleted)"
          : message.encrypted
            ? decryptText(message.text, message.iv ?? "", key)
            : message.text;
        process.stdout.write(`${String(message.id)}  ${message.senderName}: ${text}\n`);
      }
    });
}
