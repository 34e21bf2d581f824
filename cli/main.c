/* main.c — the mixlm binary: dispatch to subcommands. Only main() prints errors and exits.
 * Not where any subcommand's logic lives. */
#include "cli/commands.h"
#include "core/core.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: mixlm <command> [options]\n"
               "commands:\n"
               "  train      train a model (mixlm train --help)\n"
               "  generate   sample text from a trained run\n"
               "  eval       validation loss, perplexity, bits per char/byte\n"
               "  bench      time and memory of mixers across context lengths\n"
               "  compare    quality table across training runs (loss, bits/char, speed, memory)\n"
               "  report     one self-contained HTML page: loss curves, cost vs context, tables\n"
               "  tokenizer  train/inspect SentencePiece tokenizers\n");
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } cmds[] = {
        {"train", cmd_train}, {"generate", cmd_generate}, {"eval", cmd_eval},
        {"bench", cmd_bench}, {"tokenizer", cmd_tokenizer},
        {"compare", cmd_compare}, {"report", cmd_report},
    };
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (!strcmp(argv[1], cmds[i].name))
            return cmds[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "mixlm: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
