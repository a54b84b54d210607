/**
 * A real Synapse per test file, for the Matrix bridge (see servers.ts for when it is skipped). The first
 * start on a machine builds Synapse's Debian sid chroot, which takes a minute or two; scripts/install-deps.sh
 * builds it beforehand.
 */
import { LocalSynapse, type SynapseOptions } from "../harness/servers/matrix/LocalSynapse.js";
import { startOrSkip } from "./servers.js";

export function startSynapseOrSkip(options?: SynapseOptions): Promise<LocalSynapse | undefined> {
  return startOrSkip("synapse", () => LocalSynapse.start(options));
}
