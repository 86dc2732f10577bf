#!/usr/bin/env bash
# write-deploy-secrets.sh OVERLAY writes what a deploy needs that is never
# committed, from the environment's secrets (release.yml passes them in):
#
#   KUBECONFIG_DATA    -> $RUNNER_TEMP/kubeconfig
#   SECRETS_ENV        -> OVERLAY/secrets.env        (see secrets.env.example)
#   SLACK_WEBHOOK_URL_PAGES    -> OVERLAY/slack-webhook.env  (pages=...)
#   SLACK_WEBHOOK_URL_TICKETS  -> OVERLAY/slack-webhook.env  (tickets=...)
#
# A Slack incoming webhook posts only to the channel it was created for, so
# pages and tickets each need their own; the same URL twice would put both
# in one channel and stops the deploy. Each file is readable by this user
# alone; a missing secret stops the deploy, naming it.
set -euo pipefail

if (($# != 1)) || [[ ! -d "$1" ]]; then
	echo "usage: $0 OVERLAY_DIR" >&2
	exit 2
fi
overlay=$1
missing=()
for name in KUBECONFIG_DATA SECRETS_ENV SLACK_WEBHOOK_URL_PAGES SLACK_WEBHOOK_URL_TICKETS; do
	[[ -n "${!name:-}" ]] || missing+=("$name")
done
if ((${#missing[@]} > 0)); then
	echo "::error::the environment lacks secrets for: ${missing[*]} (KUBECONFIG, PARLEY_SECRETS_ENV, SLACK_WEBHOOK_URL_PAGES, SLACK_WEBHOOK_URL_TICKETS)" >&2
	exit 1
fi
if [[ "$SLACK_WEBHOOK_URL_PAGES" == "$SLACK_WEBHOOK_URL_TICKETS" ]]; then
	echo "::error::SLACK_WEBHOOK_URL_PAGES and SLACK_WEBHOOK_URL_TICKETS are the same webhook: pages and tickets would land in one channel" >&2
	exit 1
fi

umask 077
printf '%s\n' "$KUBECONFIG_DATA" >"${RUNNER_TEMP:?}/kubeconfig"
printf '%s\n' "$SECRETS_ENV" >"$overlay/secrets.env"
printf 'pages=%s\ntickets=%s\n' "$SLACK_WEBHOOK_URL_PAGES" "$SLACK_WEBHOOK_URL_TICKETS" >"$overlay/slack-webhook.env"
