/**
 * The loopback network's "server": conversations held in memory, each a list of messages, and whoever is
 * connected hears every new one. It stands in for a messenger's server, so that the adapter kit and the
 * conformance scenarios run without one.
 */
export interface LoopbackMessage {
  id: string;
  conversation: string;
  from: string;
  text: string;
  replyTo?: string;
  /** Set by an edit: the text it replaced is gone, as in most messengers. */
  edited?: boolean;
  deleted?: boolean;
}

export class LoopbackServer {
  private readonly messages: LoopbackMessage[] = [];
  private readonly listeners = new Set<(message: LoopbackMessage) => void>();
  private next = 1;

  /** Posts a message; everyone connected hears it. Resolves with its id. */
  post(message: Omit<LoopbackMessage, "id">): string {
    const posted = { ...message, id: `m${String(this.next++)}` };
    this.messages.push(posted);
    for (const listener of this.listeners) listener(posted);
    return posted.id;
  }

  edit(id: string, text: string): void {
    const message = this.find(id);
    message.text = text;
    message.edited = true;
  }

  delete(id: string): void {
    this.find(id).deleted = true;
  }

  /** A conversation's messages after `afterId` (all without it), oldest first: what catch-up reads. */
  history(conversation: string, afterId?: string): LoopbackMessage[] {
    const inConversation = this.messages.filter((m) => m.conversation === conversation);
    const from = afterId === undefined ? 0 : inConversation.findIndex((m) => m.id === afterId) + 1;
    return inConversation.slice(from).map((m) => ({ ...m }));
  }

  connect(listener: (message: LoopbackMessage) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private find(id: string): LoopbackMessage {
    const message = this.messages.find((m) => m.id === id);
    if (message === undefined) throw new Error(`no message ${id}`);
    return message;
  }
}
