#!/usr/bin/env bash
# wait-job.sh NAMESPACE JOB [TIMEOUT] waits until a Kubernetes Job has
# completed or failed, prints the logs of its pods, and exits 0 only when it
# completed. (kubectl wait takes one condition, so on a failed Job it would
# sit out the whole timeout.) TIMEOUT is like 90s or 15m; 15m by default.
#
#   bash .github/scripts/wait-job.sh parley-staging parley-loadtest-smoke 15m
set -euo pipefail

if (($# < 2)); then
	echo "usage: $0 NAMESPACE JOB [TIMEOUT]" >&2
	exit 2
fi
namespace=$1 job=$2 timeout=${3:-15m}
case $timeout in
*m) seconds=$((${timeout%m} * 60)) ;;
*s) seconds=${timeout%s} ;;
*) seconds=$timeout ;;
esac

deadline=$((SECONDS + seconds))
state=""
while ((SECONDS < deadline)); do
	# Complete and Failed are final; SuccessCriteriaMet and FailureTarget
	# come before them while the pods wind down.
	state=$(kubectl -n "$namespace" get job "$job" -o json 2>/dev/null |
		jq -r 'first(.status.conditions[]? | select(.status == "True" and (.type == "Complete" or .type == "Failed")) | .type) // ""') || state=""
	[[ -n "$state" ]] && break
	sleep 10
done

kubectl -n "$namespace" logs -l "job-name=$job" --all-containers --prefix --tail=-1 || true
case $state in
Complete)
	echo "job/$job completed"
	;;
Failed)
	echo "::error::job/$job failed"
	kubectl -n "$namespace" describe job "$job" || true
	exit 1
	;;
*)
	echo "::error::job/$job neither completed nor failed within $timeout"
	kubectl -n "$namespace" describe job "$job" || true
	exit 1
	;;
esac
