"""Speed benchmarks behind ``voxdesk bench …``: real processes, real SIP peers, real speech."""
