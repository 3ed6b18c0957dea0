/* fault.h: crash points for recovery tests: ORDERD_CRASH_AT=POINT[:N] kills orderd with SIGKILL the Nth time it passes POINT. */
#ifndef ORDERD_FAULT_H
#define ORDERD_FAULT_H

enum fault_point {
	FAULT_AFTER_INTENT_COMMIT = 0,	/* step intents committed, Lua calls not sent */
	FAULT_AFTER_REDIS,		/* Redis answered, results not committed */
	FAULT_AFTER_PRODUCE,		/* outbox rows produced, no delivery report yet */
	FAULT_AFTER_DELIVERY,		/* delivery report in, row not marked published */
	FAULT_MID_BATCH,		/* half of a batch written, transaction open */
	FAULT_DURING_RECOVERY,		/* settling steps recovered from the journal */
	FAULT_COUNT
};

/*
 * Reads ORDERD_CRASH_AT ("after-redis", "mid-batch:3", ...).  Off unless
 * set.  Returns 0, or -EINVAL (with a message on stderr) for a name that
 * is not a crash point, so a typo in a test never passes silently.
 */
int fault_init(void);
/* Passing a point: when it is the armed one and its count is reached, logs
 * one line and kills the process with SIGKILL. */
void fault_at(enum fault_point p);
const char *fault_name(enum fault_point p);

#endif
