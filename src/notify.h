/* notify.h: tells systemd how orderd is doing (sd_notify) when built --with-systemd; no-ops otherwise. */
#ifndef ORDERD_NOTIFY_H
#define ORDERD_NOTIFY_H

/* Every call is cheap and safe without systemd: with no $NOTIFY_SOCKET
 * (not started by a Type=notify unit) sd_notify does nothing. */

/* Started: the journal is open, recovery done, consuming. */
void notify_ready(void);
/* A SIGHUP reload begins; notify_ready() ends it. */
void notify_reloading(void);
/* A graceful stop begins. */
void notify_stopping(void);

#endif
