"""Access: who calls (principals), how they prove it, what they may do (one rule table), and the
guards that enforce it for gRPC and HTTP. Assets and every other service use it; it imports no
servicer."""
