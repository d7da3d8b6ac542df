#include "util/diag.h"

#include <stdarg.h>
#include <stdlib.h>

#include "util/alloc.h"
#include "util/strbuf.h"

void
diags_add(struct diags *d, enum diag_level level, const char *file, unsigned line, unsigned col,
	  const char *fmt, ...)
{
	struct diag *dg;
	va_list ap;

	if (d->n == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 8;
		d->v = xrealloc(d->v, d->cap * sizeof(*d->v));
	}
	dg = &d->v[d->n++];
	dg->level = level;
	dg->file = file ? xstrdup(file) : NULL;
	dg->line = line;
	dg->col = col;
	va_start(ap, fmt);
	if (vasprintf(&dg->msg, fmt, ap) < 0)
		abort();
	va_end(ap);
	if (level == DIAG_ERROR)
		d->nerrors++;
	else if (level == DIAG_WARNING)
		d->nwarnings++;
}

char *
diag_format(const struct diag *dg)
{
	struct strbuf sb = STRBUF_INIT;

	if (dg->file)
		sb_printf(&sb, "%s:", dg->file);
	if (dg->line)
		sb_printf(&sb, "%u:%u:", dg->line, dg->col);
	sb_printf(&sb, "%s%s: %s", sb.len ? " " : "",
		  dg->level == DIAG_ERROR     ? "error"
		  : dg->level == DIAG_WARNING ? "warning"
					      : "note",
		  dg->msg);
	return sb_detach(&sb);
}

void
diags_print(const struct diags *d, FILE *out)
{
	for (size_t i = 0; i < d->n; i++) {
		char *s = diag_format(&d->v[i]);
		fprintf(out, "%s\n", s);
		free(s);
	}
}

void
diags_clear(struct diags *d)
{
	for (size_t i = 0; i < d->n; i++) {
		free(d->v[i].file);
		free(d->v[i].msg);
	}
	free(d->v);
	d->v = NULL;
	d->n = d->cap = d->nerrors = d->nwarnings = 0;
}
