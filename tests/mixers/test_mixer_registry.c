/* test_mixer_registry.c — the mixers CTest runs one by one (the list in tests/CMakeLists.txt,
 * passed here as MIXLM_TEST_MIXERS=a,b,c) are exactly the registered mixers (mixer_count,
 * mixer_at), in any order: a mixer added to the registry but not to the list fails here, so
 * no mixer goes untested. Not the mixers' checks themselves (test_mixers.c). */
#include "attention/mixer.h"
#include "check.h"

#include <stdlib.h>
#include <string.h>

#define MAX_LISTED 256

static int case_list_matches_registry(void)
{
    const char *env = getenv("MIXLM_TEST_MIXERS");
    if (!env)
        return check_skip("MIXLM_TEST_MIXERS is not set (CTest sets it from tests/CMakeLists.txt)");
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", env);
    CHECK(strlen(env) < sizeof buf, "MIXLM_TEST_MIXERS longer than %zu bytes", sizeof buf);
    const char *listed[MAX_LISTED];
    int n = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok && n < MAX_LISTED;
         tok = strtok_r(NULL, ",", &save))
        listed[n++] = tok;
    for (int i = 0; i < mixer_count(); i++) {
        const char *name = mixer_at(i)->name;
        int found = 0;
        for (int j = 0; j < n; j++)
            found += strcmp(listed[j], name) == 0;
        CHECK(found == 1,
              "registered mixer '%s' is listed %d times in MIXLM_TEST_MIXERS of tests/CMakeLists.txt; "
              "add it there once",
              name, found);
    }
    for (int j = 0; j < n; j++)
        CHECK(mixer_find(listed[j]) != NULL,
              "'%s' in MIXLM_TEST_MIXERS of tests/CMakeLists.txt is not a registered mixer", listed[j]);
    CHECK(n == mixer_count(), "tests/CMakeLists.txt lists %d mixers, the registry has %d", n, mixer_count());
    return 0;
}

int main(int argc, char **argv)
{
    static const struct check_case cases[] = {
        {"list_matches_registry", case_list_matches_registry},
    };
    return check_main(argc, argv, cases, CHECK_N(cases), NULL);
}
