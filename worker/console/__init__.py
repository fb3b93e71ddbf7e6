"""The web console: ICP drafts, previews, approvals, runs, records and re-engagement in a browser."""
