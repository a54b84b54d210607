/**
 * This bridge instance on Matrix: the conversations and users it names, and which users are its own (its bot
 * and its ghosts).
 */
import { isGhost, type GhostNaming } from "./ghosts.js";

export const NETWORK = "matrix";

export class MatrixInstance {
  constructor(
    readonly instance: string,
    /** The bot's user id. */
    readonly bot: string,
    readonly naming: GhostNaming,
  ) {}

  ref(conversation: string): { network: string; instance: string; conversation: string } {
    return { network: NETWORK, instance: this.instance, conversation };
  }

  user(userId: string): { network: string; instance: string; userId: string } {
    return { network: NETWORK, instance: this.instance, userId };
  }

  isBridgeUser(userId: string): boolean {
    return userId === this.bot || isGhost(this.naming, userId);
  }
}
