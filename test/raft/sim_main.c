/*-------------------------------------------------------------------------
 *
 * sim_main.c
 *	  Command line of the Raft simulator.
 *
 *	raft_sim --nodes N --seeds A-B          a batch of random schedules,
 *	                                        one TAP line
 *	raft_sim --nodes N --seed S [--trace]   one schedule, with every event
 *	raft_sim --nodes N --seeds A-B --expect-violation
 *	                                        for broken variants: ok iff the
 *	                                        checker reports a violation
 *	raft_sim --scenarios                    the scripted scenarios (TAP)
 *	raft_sim --scenario NAME [--trace]      one of them
 *	raft_sim --measure                      figures for NOTES.md
 *
 * TAP lines are printed without numbers ("ok - ..."); run_check.sh
 * numbers them across all test programs.
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sim.h"
#include "sim_random.h"
#include "sim_scenarios.h"

#ifndef RAFT_VARIANT
#define RAFT_VARIANT "correct"
#endif

static double
wall_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static int
run_batch(int nodes, uint64_t a, uint64_t b, bool expect_violation,
		  const char *label)
{
	uint64_t	seed;
	int			failures = 0;
	uint64_t	events = 0,
				simms = 0,
				conf = 0,
				snaps = 0;
	double		t0 = wall_seconds(),
				dt;
	char		first[800] = "";
	sim_random_result res;

	for (seed = a; seed <= b; seed++)
	{
		if (!sim_random_run(seed, nodes, false, &res))
		{
			failures++;
			if (expect_violation)
			{
				snprintf(first, sizeof(first), "seed %llu: %s",
						 (unsigned long long) seed, res.violation);
				break;
			}
			printf("# FAILED seed %llu: %s\n", (unsigned long long) seed,
				   res.violation);
			printf("# rerun: ./raft_sim --nodes %d --seed %llu --trace\n",
				   nodes, (unsigned long long) seed);
			fflush(stdout);
			if (failures >= 5)
				break;
		}
		events += res.events;
		simms += res.sim_ms;
		conf += (uint64_t) res.conf_changes;
		snaps += res.snapshots;
	}
	dt = wall_seconds() - t0;
	if (expect_violation)
	{
		if (failures > 0)
		{
			printf("ok - broken variant %s: checker catches it (%s)\n",
				   label, first);
			printf("# rerun: ./raft_sim_%s --nodes %d --seed %llu --trace\n",
				   label, nodes, (unsigned long long) seed);
			return 0;
		}
		printf("not ok - broken variant %s: no violation found in %d-node seeds %llu-%llu\n",
			   label, nodes, (unsigned long long) a, (unsigned long long) b);
		return 1;
	}
	printf("%s - %d nodes: random fault schedules, seeds %llu-%llu\n",
		   failures ? "not ok" : "ok", nodes, (unsigned long long) a,
		   (unsigned long long) b);
	printf("# %llu schedules in %.1f s (%.0f/s), %llu events, %.0f simulated s, %llu config changes, %llu snapshots sent\n",
		   (unsigned long long) (b - a + 1), dt, (double) (b - a + 1) / dt,
		   (unsigned long long) events, (double) simms / 1000.0,
		   (unsigned long long) conf, (unsigned long long) snaps);
	return failures ? 1 : 0;
}

/* Every schedule must replay exactly: same seed, same events. */
static int
run_determinism(int nodes, uint64_t a, uint64_t b)
{
	uint64_t	seed;
	sim_random_result r1,
				r2;

	for (seed = a; seed <= b; seed++)
	{
		sim_random_run(seed, nodes, false, &r1);
		sim_random_run(seed, nodes, false, &r2);
		if (r1.trace_hash != r2.trace_hash || r1.events != r2.events)
		{
			printf("not ok - determinism: %d nodes seed %llu replays differently\n",
				   nodes, (unsigned long long) seed);
			return 1;
		}
	}
	printf("ok - determinism: %d nodes seeds %llu-%llu replay event for event\n",
		   nodes, (unsigned long long) a, (unsigned long long) b);
	return 0;
}

static int
parse_range(const char *arg, uint64_t *a, uint64_t *b)
{
	char	   *end;

	*a = strtoull(arg, &end, 10);
	if (*end == '-')
		*b = strtoull(end + 1, &end, 10);
	else
		*b = *a;
	return *end == '\0' && *a <= *b && *a > 0;
}

static void
usage(void)
{
	fprintf(stderr,
			"usage: raft_sim --nodes N --seeds A-B [--expect-violation]\n"
			"       raft_sim --nodes N --seed S [--trace]\n"
			"       raft_sim --scenarios | --scenario NAME [--trace]\n"
			"       raft_sim --nodes N --seeds A-B --determinism\n"
			"       raft_sim --measure\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	int			nodes = 3;
	uint64_t	a = 0,
				b = 0;
	bool		trace = false,
				expect = false,
				single = false;
	const char *scenario = NULL;
	bool		scenarios = false,
				measure = false,
				determinism = false;
	int			i;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (i = 1; i < argc; i++)
	{
		if (strcmp(argv[i], "--nodes") == 0 && i + 1 < argc)
			nodes = atoi(argv[++i]);
		else if (strcmp(argv[i], "--seeds") == 0 && i + 1 < argc)
		{
			if (!parse_range(argv[++i], &a, &b))
				usage();
		}
		else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc)
		{
			if (!parse_range(argv[++i], &a, &b))
				usage();
			single = true;
		}
		else if (strcmp(argv[i], "--trace") == 0)
			trace = true;
		else if (strcmp(argv[i], "--expect-violation") == 0)
			expect = true;
		else if (strcmp(argv[i], "--scenarios") == 0)
			scenarios = true;
		else if (strcmp(argv[i], "--scenario") == 0 && i + 1 < argc)
			scenario = argv[++i];
		else if (strcmp(argv[i], "--measure") == 0)
			measure = true;
		else if (strcmp(argv[i], "--determinism") == 0)
			determinism = true;
		else
			usage();
	}
	if (nodes < 1 || nodes + 1 > SIM_MAX_NODES)
		usage();
	if (scenarios || scenario)
		return sim_scenarios_run(scenario, trace) ? 1 : 0;
	if (measure)
		return sim_measure();
	if (a == 0)
		usage();
	if (determinism)
		return run_determinism(nodes, a, b);
	if (single)
	{
		sim_random_result res;
		int			ok = sim_random_run(a, nodes, trace, &res);

		printf("%s: seed %llu, %d nodes (%s core): %llu events, %llu messages, %.1f simulated s, commit index %llu, leader %llu ms after faults stopped%s%s\n",
			   ok ? "OK" : "FAILED", (unsigned long long) a, nodes, RAFT_VARIANT,
			   (unsigned long long) res.events,
			   (unsigned long long) res.messages, (double) res.sim_ms / 1000.0,
			   (unsigned long long) res.commit,
			   (unsigned long long) res.leader_after_heal_ms,
			   ok ? "" : ": ", ok ? "" : res.violation);
		return ok ? 0 : 1;
	}
	return run_batch(nodes, a, b, expect, RAFT_VARIANT);
}
