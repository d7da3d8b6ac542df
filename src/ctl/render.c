#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl/ctl.h"

void
render_init(struct render *r, FILE *out)
{
	const char *nc = getenv("NO_COLOR");

	r->out = out;
	r->color = isatty(fileno(out)) && !(nc && nc[0]);
}

const char *
render_badge(const struct render *r, enum plan_hazard h)
{
	/* green, blue, yellow, red backgrounds with black or white text */
	static const char *const col[] = { "\x1b[30;42m H0 \x1b[0m", "\x1b[97;44m H1 \x1b[0m",
					   "\x1b[30;43m H2 \x1b[0m", "\x1b[97;41m H3 \x1b[0m" };
	static const char *const plain[] = { "[H0]", "[H1]", "[H2]", "[H3]" };

	if (h > H3)
		return "[H?]";
	return r->color ? col[h] : plain[h];
}

static const char *
wrap(const struct render *r, const char *on, const char *s, char *buf, size_t n)
{
	if (!r->color)
		return s;
	snprintf(buf, n, "%s%s\x1b[0m", on, s);
	return buf;
}

const char *
render_bold(const struct render *r, const char *s)
{
	static char buf[1024];
	return wrap(r, "\x1b[1m", s, buf, sizeof(buf));
}

const char *
render_dim(const struct render *r, const char *s)
{
	static char buf[1024];
	return wrap(r, "\x1b[2m", s, buf, sizeof(buf));
}

/* Prints text with every line after the first indented by indent spaces. */
static void
print_indented(FILE *out, const char *text, int indent)
{
	for (const char *p = text; *p; p++) {
		fputc(*p, out);
		if (*p == '\n')
			fprintf(out, "%*s", indent, "");
	}
}

static void
print_ms(FILE *out, const char *what, int64_t ms)
{
	if (ms == 0)
		fprintf(out, "%s none", what);
	else
		fprintf(out, "%s %lld ms", what, (long long)ms);
}

/* How a step is undone: its inverse (statement, hazard, lock, checks), or why there is none. */
static void
render_undo(const struct render *r, const struct plan_step *s)
{
	FILE *o = r->out;
	const struct plan_step *v = s->inverse;

	if (s->undo != UNDO_INVERSE || !v) {
		fprintf(o, "         undo: %s\n", s->undo_reason ? s->undo_reason : "?");
		return;
	}
	fprintf(o, "         undo: %s %s  step %.16s  %s\n", render_badge(r, v->hazard),
		plan_op_name(v->op), v->sha, v->hazard_reason);
	fprintf(o, "               ");
	print_indented(o, v->stmt, 15);
	fputc('\n', o);
	fprintf(o, "               lock <= %s", pg_lock_name(v->ob.lock_class_max));
	if (v->exec == EXEC_NONTX)
		fputs(", outside a transaction", o);
	else if (v->exec == EXEC_BATCHED)
		fprintf(o, ", batches of %lld rows", (long long)v->ob.batch_size);
	fputc('\n', o);
	for (size_t k = 0; k < v->ob.prechecks.n; k++)
		fprintf(o, "               %s %s\n", k ? "     " : "pre: ", v->ob.prechecks.v[k]);
	for (size_t k = 0; k < v->ob.postchecks.n; k++)
		fprintf(o, "               %s %s\n", k ? "     " : "post:", v->ob.postchecks.v[k]);
}

void
render_plan(const struct render *r, const struct plan *p, bool verbose)
{
	FILE *o = r->out;

	fprintf(o, "%s %s  %s\n", render_badge(r, p->max_hazard), render_bold(r, p->id), p->title);
	fprintf(o, "     reason:   %s\n", p->reason);
	fprintf(o, "     file:     %s\n", p->path);
	fprintf(o, "     checksum: %.16s   steps: %zu   chaos compatible: %s\n", p->checksum,
		p->nsteps, p->max_hazard <= H2 ? "yes" : "no");
	if (p->blocked)
		fprintf(o, "     %s: %s\n", r->color ? "\x1b[1;31mblocked\x1b[0m" : "BLOCKED",
			p->blocked_reason);
	if (p->revert_of) {
		if (p->to_wave >= 0)
			fprintf(o,
				"     revert:   %s (%s): keeps its waves up to %s, undoes the "
				"applied steps after it, last first; it becomes '%s'\n",
				p->revert_of, p->reverted ? p->reverted->path : "?",
				plan_wave_name((enum plan_wave)p->to_wave), plan_revert_status(p));
		else
			fprintf(o,
				"     revert:   %s (%s): undoes its applied steps, last first; "
				"it becomes 'reverted'\n",
				p->revert_of, p->reverted ? p->reverted->path : "?");
		for (size_t k = 0; k < p->revert_kept.n; k++)
			fprintf(o, "     kept:     %s\n", p->revert_kept.v[k]);
	}
	for (int w = 0; w < WAVE__COUNT; w++) {
		const struct plan_wave_s *wv = &p->waves[w];

		if (!wv->present)
			continue;
		fprintf(o, "\n  %s %-8s %zu step%s%s\n", render_badge(r, wv->max_hazard),
			plan_wave_name((enum plan_wave)w), wv->nsteps, wv->nsteps == 1 ? "" : "s",
			wv->max_hazard <= H2 ? "" : "   (not in chaos mode)");
		for (size_t i = 0; i < wv->nsteps; i++) {
			const struct plan_step *s = &wv->steps[i];

			fprintf(o, "    %s %s\n", render_badge(r, s->hazard), plan_op_name(s->op));
			if (s->undoes)
				fprintf(o,
					"         undoes %s (line %u, %s wave, step %.16s), if "
					"applied\n",
					plan_op_name(s->undoes->op), s->undoes->line,
					plan_wave_name(s->undoes->wave), s->undoes->sha);
			fprintf(o, "         step %.16s  line %u  %s\n", s->sha, s->line,
				s->hazard_reason);
			fprintf(o, "         ");
			print_indented(o, s->stmt, 9);
			fputc('\n', o);
			fprintf(o, "         lock <= %s, ", pg_lock_name(s->ob.lock_class_max));
			print_ms(o, "lock_timeout", s->ob.max_lock_ms);
			fputs(", ", o);
			print_ms(o, "statement_timeout", s->ob.max_stmt_ms);
			if (s->exec == EXEC_NONTX)
				fputs(", outside a transaction", o);
			fputc('\n', o);
			for (int ru = 0; s->op == OP_SQL && ru < PLAN_RULE__COUNT; ru++) {
				const struct plan_rule *rule = plan_rule((enum plan_rule_id)ru);
				const char *why = plan_step_allowed(s, (enum plan_rule_id)ru);
				if (!(s->eff.rules & (1u << ru)))
					continue;
				if (why)
					fprintf(o, "         [%s %s] allowed: %s\n", rule->id,
						rule->name, why);
				else
					fprintf(o, "         [%s %s] %s; fix: %s\n", rule->id,
						rule->name, rule->what, rule->fix);
			}
			if (s->op == OP_BACKFILL_SQL) {
				fprintf(o, "         batches of %lld rows, ",
					(long long)s->ob.batch_size);
				if (s->ob.rows_per_second)
					fprintf(o, "at most %lld rows/s\n",
						(long long)s->ob.rows_per_second);
				else
					fputs("unthrottled\n", o);
			}
			if (!verbose)
				continue;
			for (size_t k = 0; k < s->ob.prechecks.n; k++)
				fprintf(o, "         %s %s\n",
					k ? "     " : "pre: ", s->ob.prechecks.v[k]);
			for (size_t k = 0; k < s->ob.postchecks.n; k++)
				fprintf(o, "         %s %s\n",
					k ? "     " : "post:", s->ob.postchecks.v[k]);
			render_undo(r, s);
		}
	}
}
