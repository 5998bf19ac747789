/* status.c - error records (see status.h). */
#include "status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

owl_status owl_err_set(owl_err *err, owl_status code, const char *fmt, ...)
{
    if (!err)
        return code;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return code;
}

void owl_err_clear(owl_err *err)
{
    if (!err)
        return;
    err->code = OWL_OK;
    err->msg[0] = 0;
}

const char *owl_status_name(owl_status s)
{
    switch (s) {
    case OWL_OK: return "OWL_OK";
    case OWL_E_INVALID: return "OWL_E_INVALID";
    case OWL_E_FORMAT: return "OWL_E_FORMAT";
    case OWL_E_TRUNCATED: return "OWL_E_TRUNCATED";
    case OWL_E_UNSUPPORTED: return "OWL_E_UNSUPPORTED";
    case OWL_E_NOMEM: return "OWL_E_NOMEM";
    case OWL_E_IO: return "OWL_E_IO";
    case OWL_E_LIMIT: return "OWL_E_LIMIT";
    case OWL_E_NOTFOUND: return "OWL_E_NOTFOUND";
    case OWL_E_CANCELLED: return "OWL_E_CANCELLED";
    case OWL_E_STATE: return "OWL_E_STATE";
    }
    return "OWL_E_UNKNOWN";
}
