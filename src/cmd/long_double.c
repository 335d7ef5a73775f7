/*
 * Long double arithmetic for INCRBYFLOAT and HINCRBYFLOAT.
 *
 * Redis computes these increments in the platform's long double (80-bit extended precision on
 * x86-64) and parses and prints them with the C library (strtold, "%.17Lf"). Rust has no such
 * type, so these few functions do the same steps in C; values cross to Rust as 16 opaque bytes.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>

/* Longest text a long double is parsed from or printed into (Redis's limit). */
#define LD_MAX_CHARS (5 * 1024)

typedef struct { unsigned char bytes[16]; } ld_box;

static long double unbox(const ld_box *b) {
    long double v;
    memcpy(&v, b->bytes, sizeof(v));
    return v;
}

static void box(long double v, ld_box *out) {
    memset(out->bytes, 0, sizeof(out->bytes));
    memcpy(out->bytes, &v, sizeof(v));
}

/* Parses s[0..len) as Redis's string2ld does; returns 1 on success. */
int slotcore_ld_parse(const char *s, size_t len, ld_box *out) {
    char buf[LD_MAX_CHARS];
    char *end;
    long double v;
    if (len == 0 || len >= sizeof(buf)) return 0;
    memcpy(buf, s, len);
    buf[len] = '\0';
    errno = 0;
    v = strtold(buf, &end);
    /* The whole text: an embedded NUL ends strtold early, which is a failure too. */
    if (isspace((unsigned char)buf[0]) || end[0] != '\0' || (size_t)(end - buf) != len ||
        (errno == ERANGE && (v == HUGE_VALL || v == -HUGE_VALL || fpclassify(v) == FP_ZERO)) ||
        errno == EINVAL || isnan(v))
        return 0;
    box(v, out);
    return 1;
}

/* The exact value of an integer. */
void slotcore_ld_from_i64(long long n, ld_box *out) {
    box((long double)n, out);
}

/* a + b. */
void slotcore_ld_add(const ld_box *a, const ld_box *b, ld_box *out) {
    box(unbox(a) + unbox(b), out);
}

/* 1 when the value is neither NaN nor infinite. */
int slotcore_ld_is_finite(const ld_box *a) {
    long double v = unbox(a);
    return !(isnan(v) || isinf(v));
}

/* Prints as Redis's ld2string(LD_STR_HUMAN): "%.17Lf" with trailing zeros (and a trailing
 * dot) cut, "-0" as "0", infinities as inf/-inf. Returns the length, 0 when it does not fit. */
size_t slotcore_ld_format_human(const ld_box *a, char *buf, size_t len) {
    long double v = unbox(a);
    int n;
    size_t l;
    if (isinf(v)) {
        const char *t = v > 0 ? "inf" : "-inf";
        l = strlen(t);
        if (len < l + 1) return 0;
        memcpy(buf, t, l + 1);
        return l;
    }
    n = snprintf(buf, len, "%.17Lf", v);
    if (n < 0 || (size_t)n + 1 > len) return 0;
    l = (size_t)n;
    if (strchr(buf, '.') != NULL) {
        char *p = buf + l - 1;
        while (*p == '0') {
            p--;
            l--;
        }
        if (*p == '.') l--;
    }
    if (l == 2 && buf[0] == '-' && buf[1] == '0') {
        buf[0] = '0';
        l = 1;
    }
    buf[l] = '\0';
    return l;
}
