/* commands.h — the subcommands of the mixlm binary. Each takes argc/argv with argv[0] being
 * the subcommand's name, prints its own --help, and returns the process exit code
 * (0 ok, 1 failure, 2 usage error). Only cli/ includes this. */
#ifndef MIXLM_COMMANDS_H
#define MIXLM_COMMANDS_H

int cmd_train(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_tokenizer(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_data(int argc, char **argv);

#endif
