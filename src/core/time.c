/* Time: wall clock for signatures, monotonic clock for timeouts and rates. */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "r2bridge/r2bridge.h"

int64_t r2b_time_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec;
}

int64_t r2b_time_mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Howard Hinnant's days_from_civil: no timegm(), no TZ, no locale. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t yy = (int64_t)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int)(yy + (*m <= 2));
}

static void put_digits(char *out, unsigned v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        out[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

void r2b_time_amz(int64_t t, char out[17])
{
    int64_t days, secs;
    int y;
    unsigned m, d;

    /* Four digits of year: clamp to 1970-01-01..9999-12-31 (found by
     * fuzz_sigv4: t - 86399 overflowed for INT64_MIN, and years past 9999
     * wrapped around). */
    if (t < 0)
        t = 0;
    if (t > R2B_TIME_MAX)
        t = R2B_TIME_MAX;
    days = t / 86400;
    secs = t - days * 86400;
    civil_from_days(days, &y, &m, &d);
    put_digits(out, (unsigned)y, 4);
    put_digits(out + 4, m, 2);
    put_digits(out + 6, d, 2);
    out[8] = 'T';
    put_digits(out + 9, (unsigned)(secs / 3600), 2);
    put_digits(out + 11, (unsigned)(secs / 60 % 60), 2);
    put_digits(out + 13, (unsigned)(secs % 60), 2);
    out[15] = 'Z';
    out[16] = '\0';
}

static int read_num(const char **s, int digits, int *out)
{
    int v = 0;

    for (int i = 0; i < digits; i++) {
        if ((*s)[i] < '0' || (*s)[i] > '9')
            return -1;
        v = v * 10 + ((*s)[i] - '0');
    }
    *s += digits;
    *out = v;
    return 0;
}

int64_t r2b_time_parse(const char *s)
{
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    int y, mo = 0, d, h, mi, se;
    const char *p = s;

    if (s == NULL)
        return -1;
    if (s[0] >= '0' && s[0] <= '9') {
        /* ISO 8601: 2024-01-31T12:00:00[.000]Z */
        if (read_num(&p, 4, &y) || *p++ != '-' || read_num(&p, 2, &mo) || *p++ != '-' ||
            read_num(&p, 2, &d) || *p++ != 'T' || read_num(&p, 2, &h) || *p++ != ':' ||
            read_num(&p, 2, &mi) || *p++ != ':' || read_num(&p, 2, &se))
            return -1;
    } else {
        /* RFC 7231: Wed, 31 Jan 2024 12:00:00 GMT */
        const char *c = strchr(s, ',');
        const char *mp;

        if (c == NULL)
            return -1;
        p = c + 1;
        while (*p == ' ')
            p++;
        if (read_num(&p, 2, &d) || *p++ != ' ')
            return -1;
        for (mp = months; *mp; mp += 3)
            if (strncmp(mp, p, 3) == 0)
                break;
        if (*mp == '\0')
            return -1;
        mo = (int)((mp - months) / 3) + 1;
        p += 3;
        if (*p++ != ' ' || read_num(&p, 4, &y) || *p++ != ' ' || read_num(&p, 2, &h) ||
            *p++ != ':' || read_num(&p, 2, &mi) || *p++ != ':' || read_num(&p, 2, &se))
            return -1;
    }
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
        return -1;
    return days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + se;
}

enum r2b_status r2b_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    if (ms <= 0)
        return R2B_OK;
    if (nanosleep(&ts, NULL) != 0 && errno == EINTR)
        return R2B_ERR_INTERRUPTED;
    return R2B_OK;
}
