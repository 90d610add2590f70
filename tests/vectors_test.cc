// `qverify vectors`, `qverify check DIR` and `qverify vectors-merge` as a user meets them (child processes).
