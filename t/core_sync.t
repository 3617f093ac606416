# Audio/video sync by the picture and the sound: the input shows one white
# frame at 1.0 s and starts a beep at 1.0 s; in every output the flash
# and the beep stay within one frame (40 ms) of each other, with and
# without a trim, from inputs whose timestamps do not start at 0.
use strict;
use warnings;

use File::Temp qw(tempdir);
use Test::More;

use VconvMedia qw(cli ffmpeg);

my $dir = tempdir(CLEANUP => 1);
my $n = 0;

# a black clip, one white frame at 1 s, a 1 kHz beep from 1 s to 1.1 s
sub flash_beep {
    my ($name, $codecs) = @_;
    my $f = "$dir/$name";
    ffmpeg("-f lavfi -i color=black:s=320x240:r=25:d=3 "
           . "-f lavfi -i sine=f=1000:sample_rate=48000:d=3 "
           . "-vf \"drawbox=c=white:t=fill:enable='between(t,1,1.039)'\" "
           . "-af \"volume='if(between(t,1,1.1),1,0)':eval=frame\" "
           . "$codecs $f");
    return $f;
}

# the time of the first bright frame, on ffmpeg's timeline (which starts
# at 0 like the beep's)
sub flash_at {
    my ($file) = @_;
    my $out = `ffmpeg -nostdin -hide_banner -i '$file' -an -vf \\
               signalstats,metadata=mode=print:key=lavfi.signalstats.YAVG \\
               -f null - 2>&1`;
    my $t;
    for (split /\n/, $out) {
        $t = $1 if /pts_time:([0-9.]+)/;
        return $t if /YAVG=([0-9.]+)/ && $1 > 100;
    }
    return undef;
}

# the time the beep starts, from the decoded sound
sub beep_at {
    my ($file) = @_;
    my $out = `ffmpeg -nostdin -hide_banner -i '$file' \\
               -af silencedetect=n=-30dB:d=0.05 -f null - 2>&1`;
    return $out =~ /silence_end: ([0-9.]+)/ ? $1 : undef;
}

my %in = (
    'MPEG-TS' => flash_beep('sync.ts', '-c:v libx264 -preset ultrafast '
                                     . '-pix_fmt yuv420p -c:a aac -f mpegts'),
    'MP4'     => flash_beep('sync.mp4', '-c:v libx264 -preset ultrafast '
                                      . '-pix_fmt yuv420p -c:a aac'),
);

# the inputs themselves are in sync, as measured here
for my $k (sort keys %in) {
    my ($v, $a) = (flash_at($in{$k}), beep_at($in{$k}));
    ok(defined $v && defined $a && abs($v - $a) <= 0.04,
       "$k input: flash " . ($v // '?') . ' s, beep ' . ($a // '?') . ' s');
}

for my $k (sort keys %in) {
    for my $fmt (qw(mp4 webm mkv mov)) {
        for my $trim ('', 'start=0.5') {
            my $out = "$dir/o" . ++$n . ".$fmt";
            my ($exit, $res, $raw) = cli($in{$k}, $out, "format=$fmt",
                                         $trim ? $trim : ());
            my $what = "$k -> $fmt" . ($trim ? " $trim" : '');
            ok($exit == 0 && $res && $res->{ok}, "$what: converted")
                or do { diag $raw; next };
            my ($v, $a) = (flash_at($out), beep_at($out));
            ok(defined $v && defined $a && abs($v - $a) <= 0.04,
               "$what: flash " . ($v // '?') . ' s, beep ' . ($a // '?')
               . ' s: within one frame');
            my $want = $trim ? 0.5 : 1.0;
            ok(defined $v && abs($v - $want) <= 0.08,
               "$what: the flash is at about $want s");
        }
    }
}

done_testing;
