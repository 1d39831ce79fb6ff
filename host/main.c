/* main.c: the mbpo command line (placeholder until the CLI lands). */
#include <stdio.h>
#include <string.h>

#include "env.h"

int main(int argc, char** argv) {
  if (argc > 1 && strcmp(argv[1], "envs") == 0) {
    for (int i = 0; i < env_ntasks(); i++) printf("%s\n", env_task_at(i)->name);
    return 0;
  }
  fprintf(stderr, "usage: mbpo envs\n");
  return 2;
}
