"""Disaster-recovery game-day harness for the SVG AI Parameter Optimization System's BCP."""
