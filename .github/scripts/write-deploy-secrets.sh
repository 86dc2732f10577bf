#!/usr/bin/env bash
# write-deploy-secrets.sh OVERLAY writes what a deploy needs that is never
# committed, from the environment's secrets (release.yml passes them in):
#
#   KUBECONFIG_DATA    -> $RUNNER_TEMP/kubeconfig
#   SECRETS_ENV        -> OVERLAY/secrets.env        (see secrets.env.example)
#   SLACK_WEBHOOK_URL  -> OVERLAY/slack-webhook.env  (url=...)
#
# Each file is readable by this user alone; a missing secret stops the
# deploy, naming it.
set -euo pipefail

if (($# != 1)) || [[ ! -d "$1" ]]; then
	echo "usage: $0 OVERLAY_DIR" >&2
	exit 2
fi
overlay=$1
missing=()
for name in KUBECONFIG_DATA SECRETS_ENV SLACK_WEBHOOK_URL; do
	[[ -n "${!name:-}" ]] || missing+=("$name")
done
if ((${#missing[@]} > 0)); then
	echo "::error::the environment lacks secrets for: ${missing[*]} (KUBECONFIG, PARLEY_SECRETS_ENV, SLACK_WEBHOOK_URL)" >&2
	exit 1
fi

umask 077
printf '%s\n' "$KUBECONFIG_DATA" >"${RUNNER_TEMP:?}/kubeconfig"
printf '%s\n' "$SECRETS_ENV" >"$overlay/secrets.env"
printf 'url=%s\n' "$SLACK_WEBHOOK_URL" >"$overlay/slack-webhook.env"
