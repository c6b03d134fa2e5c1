//! Wire contracts shared by the coordinator and the agent.
