/* Uses the installed public API: no broker runs, so connecting must say so. */
#include <mailbox.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    mbx_connect_options o;
    mbx_connect_options_init(&o);
    o.namespace_name = argc > 1 ? argv[1] : "mbxtest-consumer-none";
    mbx_client *c = NULL;
    mbx_err err = mbx_connect(&o, &c);
    printf("mailbox %s: %s\n", mbx_version(), mbx_strerror(err));
    return err == MBX_ENOBROKER && strcmp(mbx_version(), MBX_VERSION_STRING) == 0 ? 0 : 1;
}
