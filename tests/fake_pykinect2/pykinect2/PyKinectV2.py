"""The constants of pykinect2.PyKinectV2 that gaitwatch reads (values as in the Kinect SDK 2.0)."""

FrameSourceTypes_Body = 0x20
JointType_Count = 25
TrackingState_NotTracked = 0
TrackingState_Inferred = 1
TrackingState_Tracked = 2
