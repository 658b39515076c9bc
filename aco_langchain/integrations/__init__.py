"""Faces onto agent frameworks: LangChain v1 ``create_agent`` middleware and LangGraph nodes,
prebuilt agent graphs and the seed-3 strategy graphs."""
