"""The jobs' logic: inventory, planning and applying buckets, DBRPs, tasks, tokens, alerts."""
