/* notify.c: sd_notify for a Type=notify unit when built --with-systemd, so systemctl knows when orderd is up, reloading or stopping. */
#include "autoconfig.h"

#include "notify.h"

#ifdef HAVE_SYSTEMD
#include <inttypes.h>
#include <stdio.h>
#include <time.h>

#include <systemd/sd-daemon.h>

#include "log.h"

/* A failure to tell systemd is logged, never fatal: orderd works the same. */
static void
notify_send(const char *state)
{
	int err = sd_notify(0, state);

	if (err < 0)
		log_warn("notify", "sd_notify: %s", state);
}

void
notify_ready(void)
{
	notify_send("READY=1\nSTATUS=consuming");
}

void
notify_reloading(void)
{
	struct timespec ts;
	char msg[96];

	/* MONOTONIC_USEC lets systemd 253's Type=notify-reload match this
	 * reload to its SIGHUP; older systemd ignores it. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%" PRIu64 "\nSTATUS=reloading",
	    (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000);
	notify_send(msg);
}

void
notify_stopping(void)
{
	notify_send("STOPPING=1\nSTATUS=stopping: finishing steps in flight");
}

#else

void
notify_ready(void)
{
}

void
notify_reloading(void)
{
}

void
notify_stopping(void)
{
}

#endif
