-- GlitchTip keeps its data beside Parley's, in a database of its own.
CREATE DATABASE glitchtip OWNER parley;
