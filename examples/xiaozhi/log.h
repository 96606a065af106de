/* xiaozhi-server — the log sink: loops never block on stderr.
 *
 * wisp's default sink writes each line to stderr with write(2), which
 * blocks when stderr is a pipe nobody reads (a supervisor that is slow,
 * a test that reads stderr only at the end): every loop would stall on
 * its next log line. This sink copies the line into a bounded ring
 * (256 KiB) and a logger thread writes it out; when the ring is full the
 * line is dropped and counted, and the count is reported in the next
 * line that gets through. */
#ifndef XZ_LOG_H
#define XZ_LOG_H

/* Install the sink and start the logger thread. Returns 0 or -errno
 * (then wisp's default sink stays). */
int xz_log_start(void);

/* Write out what is queued, stop the thread, restore the default sink. */
void xz_log_stop(void);

#endif
