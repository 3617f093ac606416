# vconv-cli: trims, frame rates, sizes, rotation, remux, refusals, limits.
use strict;
use warnings;

use File::Temp qw(tempdir);
use Test::More;

use VconvMedia qw(make_media probe video_stream audio_stream frame_count
                  cli);

my $dir = tempdir(CLEANUP => 1);
my $n = 0;

sub near {
    my ($got, $want, $tol, $name) = @_;
    ok(defined $got && abs($got - $want) <= $tol,
       "$name: " . ($got // 'undef') . " ~ $want");
}

# converts; returns (exit, json, output path, probe or undef)
sub run {
    my ($in, $ext, @args) = @_;
    my $out = "$dir/out" . ++$n . ".$ext";
    my ($exit, $res, $raw) = cli($in, $out, @args);
    return ($exit, $res, $out, -e $out ? probe($out) : undef, $raw);
}

sub run_ok {
    my ($name, $in, $ext, @args) = @_;
    my ($exit, $res, $out, $p, $raw) = run($in, $ext, @args);
    ok($exit == 0 && $res && $res->{ok}, "$name: converted") or diag $raw;
    return ($out, $p, $res);
}

sub run_fails {
    my ($name, $in, $ext, $code, $status, @args) = @_;
    my ($exit, $res, $out, undef, $raw) = run($in, $ext, @args);
    is($exit, $status, "$name: exit $status") or diag $raw;
    is($res && $res->{error}{code}, $code, "$name: $code") or diag $raw;
    ok(!-e $out, "$name: no output left");
}

my $mp4 = make_media($dir, 'mp4');
my $ts = make_media($dir, 'ts');
my $mkv = make_media($dir, 'mkv');
my $webm = make_media($dir, 'webm');
my $rot = make_media($dir, 'rotated');
my $odd = make_media($dir, 'odd444');
my $wav = make_media($dir, 'wav');

# trim and fps: frames = fps * duration, from indexed and unindexed inputs
for my $in ($mp4, $ts, $mkv) {
    my $o = "$dir/trim" . ++$n . '.mp4';
    my ($exit, $res, $raw) = cli($in, $o, 'format=mp4', 'start=0.5',
                                 'duration=1', 'fps=10');
    is($exit, 0, "trim $in: exit 0") or diag $raw;
    my $pr = probe($o);
    near(frame_count($o), 10, 1, "trim $in: 10 fps x 1 s");
    near(video_stream($pr)->{duration}, 1.0, 0.05, "trim $in: video 1 s");
    near(audio_stream($pr)->{duration}, 1.0, 0.05, "trim $in: audio 1 s");
    near($res->{duration}, 1.0, 0.05, "trim $in: reported duration");
}

# the frame taken at start=1 is the input's frame at 1 s
{
    my $o = "$dir/at1.png";
    my ($exit) = cli($mp4, $o, 'format=png', 'start=1');
    my $ref = "$dir/ref1.png";
    system("ffmpeg -v error -y -i $mp4 -ss 1 -frames:v 1 $ref");
    my $psnr = `ffmpeg -v info -i $o -i $ref -lavfi psnr -f null - 2>&1`;
    my ($avg) = $psnr =~ /average:(\S+)/;
    ok(defined $avg && ($avg eq 'inf' || $avg > 40),
       'png start=1 is the frame at 1 s (psnr ' . ($avg // '?') . ')');
}

# rotation applied, not copied
{
    my ($out, $p) = run_ok('rotated', $rot, 'mp4');
    my $v = video_stream($p);
    is("$v->{width}x$v->{height}", '240x320', 'rotated: turned upright');
    ok(!grep({ ($_->{side_data_type} // '') eq 'Display Matrix' }
             @{ $v->{side_data_list} || [] }),
       'rotated: no display matrix left');
    ok(!defined $v->{tags}{rotate}, 'rotated: no rotate tag');

    ($out, $p) = run_ok('rotated gif', $rot, 'gif', 'format=gif', 'fps=5');
    $v = video_stream($p);
    is("$v->{width}x$v->{height}", '240x320', 'rotated gif: upright');
}

# odd size, 4:4:4 -> even 4:2:0
for my $fmt (qw(mp4 webm)) {
    my ($out, $p) = run_ok("odd $fmt", $odd, $fmt, "format=$fmt");
    my $v = video_stream($p);
    is("$v->{width}x$v->{height}", '320x240', "odd $fmt: even size");
    is($v->{pix_fmt}, 'yuv420p', "odd $fmt: 8-bit 4:2:0");
}

# sizes: aspect kept, even, no upscale unless asked
{
    my %cases = (
        'width=160'              => '160x120',
        'height=120'             => '160x120',
        'height=100'             => '132x100',
        'width=200 height=100'   => '132x100',
        'width=640'              => '320x240',
        'width=640 upscale=1'    => '640x480',
    );
    for my $opts (sort keys %cases) {
        my ($out, $p) = run_ok("size $opts", $mp4, 'mp4', split ' ', $opts);
        my $v = video_stream($p);
        is("$v->{width}x$v->{height}", $cases{$opts}, "size $opts");
    }
}

# other inputs decode
{
    my ($out, $p) = run_ok('webm in', $webm, 'mp4');
    is(video_stream($p)->{codec_name}, 'h264', 'webm in: h264 out');
    is(audio_stream($p)->{codec_name}, 'aac', 'webm in: aac out');

    ($out, $p) = run_ok('wav to mp3', $wav, 'mp3', 'format=mp3');
    is(audio_stream($p)->{codec_name}, 'mp3', 'wav to mp3: mp3');
    is(audio_stream($p)->{channels}, 2, 'wav to mp3: stereo');

    ($out, $p) = run_ok('audio=0', $mp4, 'mp4', 'audio=0');
    is(audio_stream($p), undef, 'audio=0: no audio');
    ok(video_stream($p), 'audio=0: video');
}

# a pipe: no seeking, streamable input still converts (trimmed)
{
    my $bin = ($ENV{VCONV_BUILD} // 'build') . '/vconv-cli';
    my $out = "$dir/pipe.mp4";
    my $res = `cat $mkv | $bin /dev/stdin $out start=0.5 duration=1 2>/dev/null`;
    is($? >> 8, 0, 'pipe: exit 0') or diag $res;
    near(frame_count($out), 25, 1, 'pipe: 25 fps x 1 s');
}

# remux: the same packets, no re-encode
{
    my ($out, $p) = run_ok('remux', $mp4, 'mkv', 'format=mkv',
                           'vcodec=copy', 'acodec=copy');
    my $sizes = sub {
        my ($f) = @_;
        return join ',', map { /size=(\d+)/ ? $1 : () }
            `ffprobe -v error -select_streams v:0 -show_entries packet=size -of compact $f`;
    };
    my $want = $sizes->($mp4);
    ok(length $want, 'remux: input packets');
    is($sizes->($out), $want, 'remux: same video packets');
    is(video_stream($p)->{codec_name}, 'h264', 'remux: h264');
    is(audio_stream($p)->{codec_name}, 'aac', 'remux: aac');
    near($p->{format}{duration}, 2.0, 0.05, 'remux: duration');

    run_fails('copy h264 to webm', $mp4, 'webm', 'cannot_copy', 1,
              'format=webm', 'vcodec=copy');
}

# refusals
{
    my $random = make_media($dir, 'random');
    my $nut = make_media($dir, 'nut');
    my $hls = make_media($dir, 'hls');

    run_fails('gif from audio', $wav, 'gif', 'no_video_stream', 1,
              'format=gif');
    run_fails('mp4 from audio', $wav, 'mp4', 'no_video_stream', 1);
    run_fails('mp3 from silent video', make_media($dir, 'video_only'),
              'mp3', 'no_audio_stream', 1, 'format=mp3');
    run_fails('random bytes', $random, 'mp4', 'unsupported_input', 1);
    run_fails('nut', $nut, 'mp4', 'input_format_not_allowed', 1);
    run_fails('hls playlist', $hls, 'mp4', 'input_format_not_allowed', 1);
    run_fails('bad option', $mp4, 'mp4', 'unknown_option', 2, 'colour=red');
    run_fails('start beyond end', $mp4, 'mp4', 'start_beyond_end', 1,
              'start=5');
}

# limits; cli() takes flags before the paths
sub run_limit {
    my ($name, $in, $code, @flags) = @_;
    my $out = "$dir/lim" . ++$n . '.mp4';
    my ($exit, $res, $raw) = cli(@flags, $in, $out);
    is($exit, 1, "$name: exit 1") or diag $raw;
    is($res && $res->{error}{code}, $code, "$name: $code") or diag $raw;
    ok(!-e $out, "$name: no output left");
}

{
    my $big = make_media($dir, 'big');
    run_limit('max size', $big, 'resolution_limit', '--max-size', '640x480');
    run_limit('max duration', $mp4, 'duration_limit', '--max-duration', 1);
    run_limit('max output', $mp4, 'output_size_limit',
              '--max-output', 20000);
    run_limit('max streams', $mp4, 'too_many_streams', '--max-streams', 1);
    run_limit('input formats', $mkv, 'input_format_not_allowed',
              '--input-formats', 'mov,mp4');

    my $out = "$dir/lim-ok.mp4";
    my ($exit) = cli('--max-size', '320x240', '--max-duration', 3, $mp4,
                     $out);
    is($exit, 0, 'within limits: converted');
}

done_testing();
