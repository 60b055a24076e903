// Worker thread of the link reaper (reaper.ts): deletes links by index in the server's own
// network namespace. The kernel makes RTM_DELLINK of a veth wait ~15–20 ms for the last
// references to drop; done here, that wait holds up no other call. This thread never
// changes namespace, and it was started by the main thread while that was in its own.
import { isErrno, Netlink } from "../kernel/index.ts";

declare const self: Worker;

export interface ReapRequest {
  id: number;
  index: number;
}
export interface ReapReply {
  id: number;
  error?: string;
}

let nl: Netlink | undefined;

self.onmessage = (e: MessageEvent<ReapRequest>) => {
  const { id, index } = e.data;
  let reply: ReapReply = { id };
  try {
    nl ??= Netlink.open();
    nl.delLink(index);
  } catch (err) {
    // Gone already (its namespace was deleted, or an ADD replaced it): that is done too.
    if (!isErrno(err, "ENODEV", "ENOENT")) reply = { id, error: (err as Error).message };
  }
  self.postMessage(reply);
};
