/* voro: the node process (composition root). */
#include <stdio.h>
int main(void) { puts("voro"); return 0; }
