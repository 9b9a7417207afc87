// The HTTP/2 settings both ends of a forwarding session use: the link pool's outbound sessions and
// the forwarding listener's inbound ones.

import type http2 from 'node:http2';

/**
 * Receive windows. HTTP/2's default (64 KiB per stream and per session) would cap one forwarded
 * connection at 64 KiB per round trip; the session window bounds what a peer can have in flight
 * toward this node over all its streams.
 */
const H2_STREAM_WINDOW = 4 << 20;
export const H2_SESSION_WINDOW = 32 << 20;
/**
 * Node's per-session memory cap (MB; it refuses new streams beyond it): the default 10 MB is below
 * what the windows above let a busy session buffer.
 */
const H2_MAX_SESSION_MEMORY = 128;
/** An outbound session without streams for this long is closed (its node may be gone for good). */
export const H2_IDLE_MS = 300_000;

/** `maxStreams`: this node's limit of concurrent streams per session, announced to the peer. */
export function h2SessionOptions(maxStreams: number): http2.SessionOptions {
  return {
    settings: {
      enablePush: false,
      initialWindowSize: H2_STREAM_WINDOW,
      maxConcurrentStreams: maxStreams,
    },
    maxSessionMemory: H2_MAX_SESSION_MEMORY,
  };
}
