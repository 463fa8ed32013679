/*
 * jfollow — a minimal sd_journal follower, the reference of bench/run.py's journal-live case.
 *
 *   jfollow WAIT_US     follow the local journal from its end; print each new entry's MESSAGE
 *
 * It waits with sd_journal_wait(j, WAIT_US) and then calls sd_journal_next whether or not the
 * wait reported a change. journald writes entries into the mmap'ed journal file at once, but
 * tells inotify followers only from a timer (the "post change" ftruncate, 250 ms in systemd 252),
 * so a follower that waits for inotify alone (WAIT_US = -1, as journalctl -f does) sees new
 * entries 0-250 ms late; one that also looks every WAIT_US microseconds sees them within that.
 * Output is flushed after every batch (when sd_journal_next finds nothing more).
 * An entry read a moment after journald linked it may not have its data readable yet
 * (sd_journal_get_data: ENOENT): jfollow steps back and retries it every millisecond, as a
 * follower that looks early must, instead of printing it without its MESSAGE.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-journal.h>

int main(int argc, char **argv) {
    uint64_t wait_us = (uint64_t)-1;
    if (argc > 1 && atoll(argv[1]) >= 0) wait_us = (uint64_t)atoll(argv[1]);
    sd_journal *j;
    int r = sd_journal_open(&j, SD_JOURNAL_LOCAL_ONLY);
    if (r < 0) { fprintf(stderr, "jfollow: sd_journal_open: %s\n", strerror(-r)); return 1; }
    if ((r = sd_journal_seek_tail(j)) < 0 || (r = sd_journal_previous(j)) < 0) {
        fprintf(stderr, "jfollow: seek: %s\n", strerror(-r));
        return 1;
    }
    int retries = 0;
    for (;;) {
        r = sd_journal_next(j);
        if (r < 0) { fprintf(stderr, "jfollow: sd_journal_next: %s\n", strerror(-r)); return 1; }
        if (r == 0) {
            fflush(stdout);
            r = sd_journal_wait(j, wait_us);
            if (r < 0) { fprintf(stderr, "jfollow: sd_journal_wait: %s\n", strerror(-r)); return 1; }
            continue;
        }
        const void *data;
        size_t len;
        r = sd_journal_get_data(j, "MESSAGE", &data, &len);
        if (r < 0 && retries < 100) {
            /* Read right after journald appended it, an entry can be linked before its data is
             * readable here (sd_journal_get_data: ENOENT). Step back and look again shortly. */
            retries++;
            sd_journal_previous(j);
            fflush(stdout);
            sd_journal_wait(j, 1000);
            continue;
        }
        if (retries) fprintf(stderr, "jfollow: a new entry's MESSAGE was readable only after %d retries\n", retries);
        retries = 0;
        if (r >= 0 && len >= 8) {
            fwrite((const char *)data + 8, 1, len - 8, stdout);
            fputc('\n', stdout);
        } else {
            fprintf(stderr, "jfollow: an entry without a readable MESSAGE: %s\n", r < 0 ? strerror(-r) : "short");
        }
    }
}
