/* status_figures.c: the made-up figures behind the tests' /metrics and /healthz, the same on every call. */
#include "autoconfig.h"

#include <stdio.h>
#include <string.h>

#include "metrics.h"
#include "status_figures.h"

void
status_figures_fill(struct status_figures *f, struct status_input *in)
{
	struct engine_stats *es = &f->engine;
	struct relay_snapshot *rs = &f->relay;
	struct http_stats *hs = &f->http;

	memset(f, 0, sizeof(*f));
	es->consumed[SAGA_EV_ORDER_CREATED] = 100;
	es->consumed[SAGA_EV_ORDER_INVALID] = 3;
	es->consumed[SAGA_EV_PAYMENT_SUCCEEDED] = 80;
	es->consumed[SAGA_EV_PAYMENT_FAILED] = 7;
	es->consumed[SAGA_EV_CANCEL_REQUESTED] = 2;
	es->duplicates = 5;
	es->dead_letters = 4;
	es->parked_expired = 2;
	es->parked_pending = 3;
	es->sagas_by_state[SAGA_NEW] = 103;
	es->sagas_by_state[SAGA_CONFIRMED] = 80;
	es->steps_in_flight = 12;
	es->redis_up = true;
	/* 40 us, 40 us, 300 us, 2 s, 20 s: buckets 50us, 50us, 500us, 2.5s, +Inf. */
	metrics_observe(&es->step_latency, 40);
	metrics_observe(&es->step_latency, 40);
	metrics_observe(&es->step_latency, 300);
	metrics_observe(&es->step_latency, 2000000);
	metrics_observe(&es->step_latency, 20000000);
	metrics_observe(&es->batch_size, 7);
	metrics_observe(&rs->ack_latency, 1500);
	rs->produced = 9;
	rs->published = 8;
	hs->by_class[2] = 11;
	hs->evicted[HTTP_CONN_IDLE] = 7;
	hs->evicted[HTTP_CONN_FINISHED] = 2;
	hs->rejected = 1;
	hs->peer_rejected = 3;
	hs->connections = 5;
	hs->by_state[HTTP_CONN_IDLE] = 4;
	hs->by_state[HTTP_CONN_WRITING] = 1;
	snprintf(f->lag[0].topic, sizeof(f->lag[0].topic), "orders");
	f->lag[0].partition = 0;
	f->lag[0].lag = 42;
	snprintf(f->lag[1].topic, sizeof(f->lag[1].topic), "we\"ird\\");
	f->lag[1].partition = 2;
	f->lag[1].lag = 0;
	memset(in, 0, sizeof(*in));
	in->engine = es;
	in->relay = rs;
	in->http = hs;
	in->journal_ok = true;
	in->orders_new = 1;
	in->orders_reserved = 20;
	in->outbox_pending = 3;
	in->outbox_oldest_age_ms = 1234;
	in->lag = f->lag;
	in->nlag = 2;
	in->process_ok = true;
	in->rss_bytes = 1 << 20;
	in->cpu_seconds = 1.5;
	in->open_fds = 10;
	in->max_fds = 1024;
}
