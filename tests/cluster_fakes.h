/* cluster_fakes.h: fake Redis Cluster nodes on loopback, on one uv loop, answering CLUSTER SLOTS from a map and redirecting by rules, for tests of the router and of the blocking client. */
#ifndef ORDERD_CLUSTER_FAKES_H
#define ORDERD_CLUSTER_FAKES_H

#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

#define FAKES 3

enum fake_rule_kind {
	FAKE_MOVED = 1,		/* answers MOVED slot target */
	FAKE_ASK,		/* answers ASK slot target */
	FAKE_NEED_ASKING,	/* serves the slot only after ASKING, else MOVED target */
	FAKE_TRYAGAIN,		/* answers TRYAGAIN, times times (-1: always) */
	FAKE_NOSCRIPT,		/* answers NOSCRIPT until a SCRIPT LOAD came */
	FAKE_SILENT,		/* never answers: a node that hangs */
};

struct fake_rule {
	int slot;
	enum fake_rule_kind kind;
	int target;		/* fake index */
	int times;
};

struct fake_conn;

struct fake {
	uv_tcp_t server;
	int idx;
	int port;
	struct fake_rule rules[8];
	int nrules;
	struct fake_conn *conns[32];
	int nconns;
	/* What it saw and answered. */
	int served;		/* commands with a key that it ran */
	int moved, asked, tryagain, askings, cluster_slots, loads, scans, silent;
};

/* The map every fake answers CLUSTER SLOTS with: [lo, hi] -> fake. */
struct fake_range {
	int lo, hi, fake;
};

/* The loop the fakes run on (and the router under test with them). */
extern uv_loop_t loop;
extern struct fake fakes[FAKES];
/* A test may change the map: the fakes answer with it from then on. */
extern struct fake_range ranges[8];
extern int nranges;

/* The Check fixture: a new loop with the three fakes listening on it,
 * fake 0 owning slots 0..8191, fake 1 8192..16383, fake 2 nothing; the
 * teardown closes every handle and the loop. */
void setup(void);
void teardown(void);
/* Gives fake fake a rule for slot (see enum fake_rule_kind). */
void fake_add_rule(int fake, int slot, enum fake_rule_kind kind, int target, int times);
/* A port nothing listens on. */
int dead_port(void);
/* A stock key (prefix "t:") whose slot is in [lo, hi]. */
void key_in(char *buf, size_t len, int lo, int hi);

#endif
