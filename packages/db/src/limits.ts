// The bounds on what is stored, named once: every writer of operation rows, event rows and outbox
// rows cuts to these (the full text belongs in the logs).

/** Longest error or event message, and an outbox row's last delivery error, in characters. */
export const MAX_MESSAGE = 4000;
/** Longest notification subject (one line), in characters. */
export const MAX_SUBJECT = 500;
/** Longest notification body, in characters. */
export const MAX_BODY = 64_000;
/** Longest short name stored: error code and class, event kind, worker id, claimer. */
export const MAX_NAME = 200;
