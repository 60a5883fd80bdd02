/* topics.c: see topics.h. */
#include <string.h>

#include "topics.h"

static bool token_char(unsigned char c)
{
    return (unsigned)(c - 'a') < 26 || (unsigned)(c - 'A') < 26 || (unsigned)(c - '0') < 10 ||
           c == '_' || c == '-';
}

static bool reserved_prefix(const char *s, size_t len)
{
    return len > TOPICS_RESERVED_LEN && memcmp(s, TOPICS_RESERVED, TOPICS_RESERVED_LEN) == 0;
}

/* One pass over the tokens; wildcards: whether '*' and a last '>' are allowed. */
static bool valid(const char *s, size_t len, bool reserved, bool wildcards)
{
    if (s == NULL || len == 0 || len > MBX_TOPIC_MAX)
        return false;
    size_t i = 0;
    if (reserved_prefix(s, len)) {
        if (!reserved)
            return false;
        i = TOPICS_RESERVED_LEN;
    }
    while (i < len) {
        size_t start = i;
        while (i < len && s[i] != '.')
            i++;
        size_t n = i - start;
        if (n == 0)
            return false; /* empty token: leading, trailing or doubled '.' */
        if (n == 1 && wildcards && s[start] == '*') {
            /* one token */
        } else if (n == 1 && wildcards && s[start] == '>') {
            if (i != len)
                return false; /* '>' only last */
        } else {
            for (size_t k = start; k < i; k++)
                if (!token_char((unsigned char)s[k]))
                    return false;
        }
        if (i < len)
            i++; /* the '.' */
        if (i == len && s[len - 1] == '.')
            return false;
    }
    return true;
}

mbx_err mbx_check_topic(const char *topic)
{
    return topic != NULL && topics_valid_topic(topic, strnlen(topic, MBX_TOPIC_MAX + 1), false)
               ? MBX_OK
               : MBX_EINVAL;
}

mbx_err mbx_check_pattern(const char *pattern)
{
    return pattern != NULL && topics_valid_pattern(pattern, strnlen(pattern, MBX_TOPIC_MAX + 1))
               ? MBX_OK
               : MBX_EINVAL;
}

int mbx_pattern_match(const char *pattern, const char *topic)
{
    if (mbx_check_pattern(pattern) != MBX_OK || topic == NULL)
        return 0;
    size_t tlen = strnlen(topic, MBX_TOPIC_MAX + 1);
    /* Topics and names both qualify: dotted tokens, none empty. */
    if (tlen == 0 || tlen > MBX_TOPIC_MAX || topic[0] == '.' || topic[tlen - 1] == '.' ||
        strstr(topic, "..") != NULL)
        return 0;
    return topics_match(pattern, strlen(pattern), topic, tlen) ? 1 : 0;
}

bool topics_valid_topic(const char *topic, size_t len, bool reserved)
{
    return valid(topic, len, reserved, false);
}

bool topics_valid_pattern(const char *pattern, size_t len)
{
    return valid(pattern, len, true, true);
}

/* The token of s[0..len) starting at *pos; moves *pos past it and its '.'. */
static size_t next_token(const char *s, size_t len, size_t *pos, const char **tok)
{
    size_t start = *pos;
    size_t i = start;
    while (i < len && s[i] != '.')
        i++;
    *tok = s + start;
    *pos = i < len ? i + 1 : len;
    return i - start;
}

bool topics_match(const char *pattern, size_t plen, const char *topic, size_t tlen)
{
    /* A wildcard in first place never reaches the broker's own topics. */
    if ((pattern[0] == '*' || pattern[0] == '>') && (plen == 1 || pattern[1] == '.') &&
        topic[0] == '$')
        return false;
    size_t pp = 0, tp = 0;
    while (pp < plen) {
        const char *pt, *tt;
        size_t pn = next_token(pattern, plen, &pp, &pt);
        if (pn == 1 && pt[0] == '>')
            return tp < tlen; /* one or more tokens left */
        if (tp >= tlen)
            return false;
        size_t tn = next_token(topic, tlen, &tp, &tt);
        if (pn == 1 && pt[0] == '*')
            continue;
        if (pn != tn || memcmp(pt, tt, pn) != 0)
            return false;
    }
    return tp >= tlen;
}
